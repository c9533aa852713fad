// The function app on Flex Consumption (Linux, Python pythonVersion). Every connection is identity-based
// with the user-assigned identity: AzureWebJobsStorage, the Event Hubs trigger, ADX, Application
// Insights and Key Vault references. No key, connection string or publishing password exists.

@description('Function app name.')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('azd service name (tag azd-service-name) in azure.yaml.')
param serviceName string = 'ingest'

@description('Resource id of the user-assigned identity.')
param identityId string

@description('Client id of the user-assigned identity.')
param identityClientId string

@description('Blob service URI of the AzureWebJobsStorage account (its primaryEndpoints.blob).')
param storageBlobServiceUri string

@description('Queue service URI of the AzureWebJobsStorage account (its primaryEndpoints.queue).')
param storageQueueServiceUri string

@description('Container URI of the deployment package.')
param deploymentContainerUri string

@description('Container URI of the dead letters.')
param deadLetterContainerUri string

@description('Application Insights connection string (holds no secret; local auth is disabled).')
param appInsightsConnectionString string

@description('ADX data-ingestion URI.')
param adxIngestUri string

@description('ADX engine URI.')
param adxEngineUri string

@description('Event Hubs namespace host name, from the namespace\'s serviceBusEndpoint.')
param eventHubsNamespaceHost string

@description('Event hub(s) the trigger reads, comma-separated (one function per event hub).')
param eventHubName string

@description('Consumer group of the Event Hubs trigger.')
param eventHubConsumerGroup string

@description('How string application properties become Kafka header bytes: base64 (Kafka producers through the Event Hubs Kafka endpoint) or text (AMQP producers).')
@allowed([
  'base64'
  'text'
])
param eventHubHeaderEncoding string = 'base64'

@description('Register the Event Hubs trigger (the app switches it on when EVENTHUB_NAME is set).')
param enableEventHubTrigger bool = true

@description('Kafka bootstrap servers of a non-Azure broker (empty: no Kafka trigger; the app switches it on when KAFKA_BROKERS is set).')
param kafkaBrokers string = ''

@description('Kafka topic(s) the Kafka trigger reads, comma-separated (one function per topic).')
param kafkaTopic string = ''

@description('Consumer group of the Kafka trigger.')
param kafkaConsumerGroup string = 'kafka-adx'

@description('Kafka security protocol.')
@allowed([
  'sasl_ssl'
  'ssl'
  'sasl_plaintext'
  'plaintext'
])
param kafkaProtocol string = 'sasl_ssl'

@description('Kafka SASL mechanism, or none for no SASL (then no KAFKA_SASL_MECHANISM and no credential settings). OAUTHBEARER is not supported by the Python Kafka trigger.')
@allowed([
  'none'
  'plain'
  'scram-sha-256'
  'scram-sha-512'
  'gssapi'
])
param kafkaSaslMechanism string = 'plain'

@description('How the Kafka trigger hands values over: binary (raw bytes) or string (the extension\'s JSON envelope).')
@allowed([
  'binary'
  'string'
])
param kafkaDataType string = 'binary'

@description('Key Vault secret URI of the Kafka username (needed with a SASL mechanism other than gssapi).')
param kafkaUsernameSecretUri string = ''

@description('Key Vault secret URI of the Kafka password (needed with a SASL mechanism other than gssapi).')
param kafkaPasswordSecretUri string = ''

@description('Confluent-compatible schema registry URL(s) of the avro/jsonschema routes (empty: none).')
param schemaRegistryUrl string = ''

@description('Seconds one schema registry request may take (set when a registry is used).')
param schemaRegistryTimeout string = '10'

@description('Key Vault secret URI of the schema registry user (empty: no authentication).')
param schemaRegistryUsernameSecretUri string = ''

@description('Key Vault secret URI of the schema registry password.')
param schemaRegistryPasswordSecretUri string = ''

@description('Event Hubs namespace host whose Azure Schema Registry serves avro/binary+<id> records (empty: none).')
param azureSchemaRegistryNamespace string = ''

@description('Retries of a failed batch before it is dead-lettered (-1: forever).')
@minValue(-1)
param retryMaxCount int = 5

@description('First retry delay (hh:mm:ss), doubled on each retry.')
param retryMinInterval string = '00:00:10'

@description('Longest retry delay (hh:mm:ss).')
param retryMaxInterval string = '00:05:00'

@description('Most instances Flex Consumption scales out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory of each instance.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Subnet for VNet integration (empty: none).')
param appSubnetId string = ''

@description('Python version of the app on Flex Consumption (functionAppConfig.runtime.version); Flex offers 3.10 to 3.13, the project supports 3.11 and later.')
@allowed([
  '3.11'
  '3.12'
  '3.13'
])
param pythonVersion string = '3.13'

var enableKafkaTrigger = !empty(kafkaBrokers)
// Comparisons sit in variables: pycep misparses `a == b ? x : y`.
var kafkaNoSasl = kafkaSaslMechanism == 'none'
var kafkaGssapi = kafkaSaslMechanism == 'gssapi'
var kafkaUsesSasl = enableKafkaTrigger && !kafkaNoSasl
// The app requires KAFKA_USERNAME/KAFKA_PASSWORD with every mechanism but gssapi (Kerberos).
var kafkaUsesCredentials = kafkaUsesSasl && !kafkaGssapi

// Settings the function app and the host read; tests/infra/test_settings_consistency.py checks
// them against the code. Flex Consumption sets the runtime itself: no FUNCTIONS_WORKER_RUNTIME
// or FUNCTIONS_EXTENSION_VERSION here (the platform rejects them).
var platformSettings = [
  // The service URIs, not __accountName: the host infers the endpoints from an account name
  // only in the public cloud without custom DNS (Functions reference, "Connecting to host storage
  // with an identity"). Blob and queue: the services the identity has roles on and that get
  // private endpoints.
  {
    name: 'AzureWebJobsStorage__blobServiceUri'
    value: storageBlobServiceUri
  }
  {
    name: 'AzureWebJobsStorage__queueServiceUri'
    value: storageQueueServiceUri
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identityClientId
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: appInsightsConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${identityClientId};Authorization=AAD'
  }
]

var pipelineSettings = [
  {
    name: 'INGESTION_CONFIG'
    value: 'ingestion.yaml'
  }
  {
    name: 'ADX_INGEST_URI'
    value: adxIngestUri
  }
  {
    name: 'ADX_ENGINE_URI'
    value: adxEngineUri
  }
  {
    name: 'ADX_AUTH'
    value: 'managed-identity'
  }
  {
    name: 'AZURE_CLIENT_ID'
    value: identityClientId
  }
  {
    name: 'DEADLETTER_BLOB_URI'
    value: deadLetterContainerUri
  }
  {
    name: 'RETRY_MAX_COUNT'
    value: string(retryMaxCount)
  }
  {
    name: 'RETRY_MIN_INTERVAL'
    value: retryMinInterval
  }
  {
    name: 'RETRY_MAX_INTERVAL'
    value: retryMaxInterval
  }
]

var eventHubSettings = [
  {
    name: 'EventHubConnection__fullyQualifiedNamespace'
    value: eventHubsNamespaceHost
  }
  {
    name: 'EventHubConnection__credential'
    value: 'managedidentity'
  }
  {
    name: 'EventHubConnection__clientId'
    value: identityClientId
  }
  {
    name: 'EVENTHUB_NAME'
    value: eventHubName
  }
  {
    name: 'EVENTHUB_CONSUMER_GROUP'
    value: eventHubConsumerGroup
  }
  {
    name: 'EVENTHUB_HEADER_ENCODING'
    value: eventHubHeaderEncoding
  }
]

var kafkaSettings = [
  {
    name: 'KAFKA_BROKERS'
    value: kafkaBrokers
  }
  {
    name: 'KAFKA_TOPIC'
    value: kafkaTopic
  }
  {
    name: 'KAFKA_CONSUMER_GROUP'
    value: kafkaConsumerGroup
  }
  {
    name: 'KAFKA_PROTOCOL'
    value: kafkaProtocol
  }
  {
    name: 'KAFKA_DATA_TYPE'
    value: kafkaDataType
  }
]

// Only with SASL: the app reads an unset KAFKA_SASL_MECHANISM as no SASL.
var kafkaSaslSettings = [
  {
    name: 'KAFKA_SASL_MECHANISM'
    value: kafkaSaslMechanism
  }
]

// Only with SASL that takes a user name and password: Key Vault references.
var kafkaCredentialSettings = [
  {
    name: 'KAFKA_USERNAME'
    value: '@Microsoft.KeyVault(SecretUri=${kafkaUsernameSecretUri})'
  }
  {
    name: 'KAFKA_PASSWORD'
    value: '@Microsoft.KeyVault(SecretUri=${kafkaPasswordSecretUri})'
  }
]

var schemaRegistrySettings = [
  {
    name: 'SCHEMA_REGISTRY_URL'
    value: schemaRegistryUrl
  }
]

var schemaRegistryCredentialSettings = [
  {
    name: 'SCHEMA_REGISTRY_USERNAME'
    value: '@Microsoft.KeyVault(SecretUri=${schemaRegistryUsernameSecretUri})'
  }
  {
    name: 'SCHEMA_REGISTRY_PASSWORD'
    value: '@Microsoft.KeyVault(SecretUri=${schemaRegistryPasswordSecretUri})'
  }
]

// The Azure Schema Registry signs in with the app's identity (ADX_AUTH, AZURE_CLIENT_ID).
var azureSchemaRegistrySettings = [
  {
    name: 'AZURE_SCHEMA_REGISTRY_NAMESPACE'
    value: azureSchemaRegistryNamespace
  }
]

var schemaRegistryTimeoutSettings = [
  {
    name: 'SCHEMA_REGISTRY_TIMEOUT'
    value: schemaRegistryTimeout
  }
]

var usesSchemaRegistry = !empty(schemaRegistryUrl)
var usesSchemaRegistryCredentials = usesSchemaRegistry && !empty(schemaRegistryUsernameSecretUri)
var usesAzureSchemaRegistry = !empty(azureSchemaRegistryNamespace)
var usesAnySchemaRegistry = usesSchemaRegistry || usesAzureSchemaRegistry

// The app registers a trigger only when its source setting (EVENTHUB_NAME, KAFKA_BROKERS) is set.
var eventHubSettingsIfEnabled = enableEventHubTrigger ? eventHubSettings : []
var kafkaSettingsIfEnabled = enableKafkaTrigger ? kafkaSettings : []
var kafkaSaslSettingsIfUsed = kafkaUsesSasl ? kafkaSaslSettings : []
var kafkaCredentialSettingsIfUsed = kafkaUsesCredentials ? kafkaCredentialSettings : []
var schemaRegistrySettingsIfUsed = usesSchemaRegistry ? schemaRegistrySettings : []
var schemaRegistryCredentialSettingsIfUsed = usesSchemaRegistryCredentials ? schemaRegistryCredentialSettings : []
var azureSchemaRegistrySettingsIfUsed = usesAzureSchemaRegistry ? azureSchemaRegistrySettings : []
var schemaRegistryTimeoutSettingsIfUsed = usesAnySchemaRegistry ? schemaRegistryTimeoutSettings : []

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  //checkov:skip=CKV_AZURE_225:Zone redundancy on Flex Consumption depends on the region; ingestion resumes from the last checkpoint after a zone outage.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  //checkov:skip=CKV_AZURE_17:The app has no HTTP-triggered functions; client certificates would protect no endpoint.
  //checkov:skip=CKV_AZURE_213:The app has no HTTP endpoint to probe; Flex Consumption replaces unhealthy instances itself.
  //checkov:skip=CKV_AZURE_212:Flex Consumption scales out from zero per event; a minimum instance count is a dedicated-plan setting.
  //checkov:skip=CKV_AZURE_222:The app exposes no HTTP functions; the public endpoint serves only the deployment (SCM) endpoint, which requires Entra ID since basic publishing credentials are disabled.
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    keyVaultReferenceIdentity: identityId
    virtualNetworkSubnetId: empty(appSubnetId) ? null : appSubnetId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUri
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      remoteDebuggingEnabled: false
      appSettings: concat(platformSettings, pipelineSettings, eventHubSettingsIfEnabled, kafkaSettingsIfEnabled, kafkaSaslSettingsIfUsed, kafkaCredentialSettingsIfUsed, schemaRegistrySettingsIfUsed, schemaRegistryCredentialSettingsIfUsed, azureSchemaRegistrySettingsIfUsed, schemaRegistryTimeoutSettingsIfUsed)
    }
  }
}

// No publishing password exists for FTP or the deployment endpoint: azd deploys with Entra ID.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = app.id
output name string = app.name
output defaultHostName string = app.properties.defaultHostName
