// kafka-adx: Kafka / Event Hubs -> Azure Data Explorer, serverless. Deployed with `azd up`.
// Subscription scope: creates the resource group, then everything in it through the modules in
// ./modules (plain Bicep, no registry modules, so pycep and checkov can read every file).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; prefixes the resource group and seeds the resource token.')
param environmentName string

@minLength(1)
@description('Azure region of every resource (must offer Flex Consumption).')
param location string

@description('Object id of the deploying principal (azd sets AZURE_PRINCIPAL_ID): Event Hubs Data Sender, dead-letter access and (a user) ADX Viewer/Ingestor on a new cluster. Empty: none.')
param principalId string = ''

@description('Kind of principalId (azd sets AZURE_PRINCIPAL_TYPE): User, or ServicePrincipal when azd signs in as one (CI).')
@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('The deploying principal as ADX knows it, for Viewer/Ingestor on a new cluster\'s database: a user\'s e-mail (UPN) or a service principal\'s application (client) id. Empty: a user\'s principalId (object id); a service principal gets no ADX role.')
param adxPrincipalId string = ''

@description('Resource id of an EXISTING ADX database to ingest into (/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Kusto/clusters/<cluster>/databases/<database>, any resource group or subscription). Then no cluster is created: the identity gets Ingestor on that database and only the ingestion file\'s KQL runs there. Empty: a new cluster (the default).')
param adxDatabaseResourceId string = ''

@description('Resource id of an EXISTING event hub for the function to read (/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.EventHub/namespaces/<namespace>/eventhubs/<hub>). Then no namespace is created: the identity gets Data Receiver on that hub and triggerConsumerGroup is created on it. Empty: a new namespace with eventHubs (the default).')
param eventHubResourceId string = ''

@description('Event hubs to create. Kafka producers use the event hub name as the topic.')
param eventHubs array = [
  {
    name: 'storm-events'
    partitionCount: 4
    messageRetentionInDays: 1
    consumerGroups: [
      'kafka-adx'
    ]
  }
]

@description('Event hub(s) the function reads, comma-separated without spaces (each one of eventHubs).')
param triggerEventHubNames string = 'storm-events'

@description('Consumer group of the function (in the consumerGroups of each of those event hubs).')
param triggerConsumerGroup string = 'kafka-adx'

@description('How string application properties of events become Kafka header bytes: base64 (Kafka producers through the Kafka endpoint) or text (AMQP producers).')
param eventHubHeaderEncoding string = 'base64'

@description('Event Hubs throughput units.')
param eventHubsCapacity int = 1

@description('ADX database of a new cluster; must equal `database` in ingestion.yaml (a test checks it). With adxDatabaseResourceId the database is the one that id names.')
param adxDatabaseName string = 'Weather'

@description('ADX cluster SKU. The Dev SKU has no SLA; use e.g. Standard_E2ads_v5 with tier Standard and capacity 2 in production.')
param adxSkuName string = 'Dev(No SLA)_Standard_E2a_v4'

@description('ADX cluster SKU tier.')
@allowed([
  'Basic'
  'Standard'
])
param adxSkuTier string = 'Basic'

@description('ADX instance count.')
param adxCapacity int = 1

@description('Enable streaming ingestion on the ADX cluster; routes with `ingestion: streaming` need it (a test checks the default against ingestion.yaml).')
param adxEnableStreamingIngest bool = false

@description('Register the Event Hubs trigger (sets EVENTHUB_NAME).')
param enableEventHubTrigger bool = true

@description('Bootstrap servers of a non-Azure Kafka broker; set to add the Kafka trigger (credentials go to Key Vault).')
param kafkaBrokers string = ''

@description('Topic the Kafka trigger reads.')
param kafkaTopic string = ''

@description('Consumer group of the Kafka trigger.')
param kafkaConsumerGroup string = 'kafka-adx'

@description('Kafka security protocol (KAFKA_PROTOCOL): sasl_ssl or sasl_plaintext with a SASL mechanism, ssl or plaintext without.')
@allowed([
  'sasl_ssl'
  'ssl'
  'sasl_plaintext'
  'plaintext'
])
param kafkaProtocol string = 'sasl_ssl'

@description('Kafka SASL mechanism (KAFKA_SASL_MECHANISM): plain, scram-sha-256, scram-sha-512, gssapi, or none for no SASL (no credentials, no Key Vault).')
@allowed([
  'none'
  'plain'
  'scram-sha-256'
  'scram-sha-512'
  'gssapi'
])
param kafkaSaslMechanism string = 'plain'

@description('How the Kafka trigger hands values over: binary or string (JSON envelope).')
param kafkaDataType string = 'binary'

@secure()
@description('Kafka SASL username, stored in Key Vault (required with a SASL mechanism other than gssapi; the preprovision hook checks it).')
param kafkaUsername string = ''

@secure()
@description('Kafka SASL password, stored in Key Vault (required with a SASL mechanism other than gssapi; the preprovision hook checks it).')
param kafkaPassword string = ''

@description('Confluent-compatible schema registry of the avro/jsonschema routes (SCHEMA_REGISTRY_URL: comma-separated URLs). Empty: none.')
param schemaRegistryUrl string = ''

@secure()
@description('Basic-auth user of that registry (Confluent Cloud: the API key), stored in Key Vault. Empty: no authentication.')
param schemaRegistryUsername string = ''

@secure()
@description('Basic-auth password of that registry (Confluent Cloud: the API secret), stored in Key Vault.')
param schemaRegistryPassword string = ''

@description('Seconds one schema registry request may take (SCHEMA_REGISTRY_TIMEOUT), set when a registry is used.')
param schemaRegistryTimeout string = '10'

@description('Read avro/binary+<id> records\' schemas from the Azure Schema Registry of the trigger\'s Event Hubs namespace (AZURE_SCHEMA_REGISTRY_NAMESPACE): the identity gets Schema Registry Reader on that namespace.')
param enableAzureSchemaRegistry bool = false

@description('Retries of a failed batch before it is dead-lettered (-1: forever).')
param retryMaxCount int = 5

@description('First retry delay (hh:mm:ss), doubled on each retry.')
param retryMinInterval string = '00:00:10'

@description('Longest retry delay (hh:mm:ss).')
param retryMaxInterval string = '00:05:00'

@description('Python version of the function app (KAFKA_ADX_PYTHON_VERSION). Flex Consumption offers 3.10-3.13 (Get-AzFunctionAppFlexConsumptionRuntime); the app supports 3.11 and later.')
@allowed([
  '3.11'
  '3.12'
  '3.13'
])
param pythonVersion string = '3.13'

@description('Private networking: VNet integration for the app, private endpoints for storage, Event Hubs and Key Vault, public endpoints closed.')
param enablePrivateNetworking bool = false

@description('With private networking: a NAT gateway with a static public IP on the app subnet (KAFKA_ADX_NAT_GATEWAY), so the app reaches ADX, Application Insights and a Kafka broker from one fixed address that their IP allow lists can name. Without it those public endpoints are reached from the platform\'s outbound addresses.')
param enableNatGateway bool = false

@description('E-mail address the alerts go to (KAFKA_ADX_ALERT_EMAIL): an action group mails each alert. Empty: no action group; the alerts show in the portal only.')
param alertEmail string = ''

@description('Dead letters of a table in 15 minutes above which the dead-letter alert fires (KAFKA_ADX_ALERT_DEAD_LETTERS; 0: any dead letter).')
@minValue(0)
param alertDeadLetterThreshold int = 0

@description('End-to-end lag in seconds (the worst batch of 15 minutes, per topic) above which the lag alert fires (KAFKA_ADX_ALERT_LAG_SECONDS).')
@minValue(1)
param alertLagSeconds int = 300

@description('Minutes in which Event Hubs received messages but kafka-adx ingested or dead-lettered none before the no-records alert fires (KAFKA_ADX_ALERT_NO_RECORDS_MINUTES).')
@allowed([
  5
  10
  15
  30
  45
  60
  120
  180
  240
  300
  360
  1440
])
param alertNoRecordsMinutes int = 15

@description('ADX ingestion failures of a table in 15 minutes above which the ADX alert fires (KAFKA_ADX_ALERT_ADX_FAILURES; 0: any failure).')
@minValue(0)
param alertAdxFailureThreshold int = 0

@description('Also add diagnostic settings to an EXISTING ADX cluster (adxDatabaseResourceId: its ingestion reports, every database\'s) and an EXISTING Event Hubs namespace (eventHubResourceId: its metrics), sending them to this deployment\'s workspace (KAFKA_ADX_MONITOR_EXISTING). Needs the right to write diagnostic settings there; a resource holds at most five. New resources always get them.')
param monitorExistingResources bool = false

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'kafka-adx'
}
var enableKafkaTrigger = !empty(kafkaBrokers)
// Comparisons sit in variables: pycep misparses `a == b ? x : y`.
var kafkaNoSasl = kafkaSaslMechanism == 'none'
var kafkaGssapi = kafkaSaslMechanism == 'gssapi'
var kafkaUsesSasl = enableKafkaTrigger && !kafkaNoSasl
// Credentials (and the Key Vault holding them) only with SASL that takes a user name and password.
var kafkaUsesCredentials = kafkaUsesSasl && !kafkaGssapi
// pycep reads `!a && b` as `!(a && b)`: a leading negation gets a variable of its own.
var usesSchemaRegistry = !empty(schemaRegistryUrl)
var schemaRegistryUsesCredentials = usesSchemaRegistry && !empty(schemaRegistryUsername)
// One vault for every credential that cannot be a managed identity.
var useKeyVault = kafkaUsesCredentials || schemaRegistryUsesCredentials
var kafkaSecrets = kafkaUsesCredentials ? {
  'kafka-username': kafkaUsername
  'kafka-password': kafkaPassword
} : {}
var schemaRegistrySecrets = schemaRegistryUsesCredentials ? {
  'schema-registry-username': schemaRegistryUsername
  'schema-registry-password': schemaRegistryPassword
} : {}
// The app's identity reads schemas from the trigger namespace's Azure Schema Registry.
var schemaReaderPrincipalId = enableAzureSchemaRegistry ? identity.outputs.principalId : ''
var deployerIsUser = principalType == 'User'
// ADX names a service principal by its application id and calls it App.
var adxDeployerType = deployerIsUser ? 'User' : 'App'
var adxDeployerFallback = deployerIsUser ? principalId : ''
var adxDeployerId = empty(adxPrincipalId) ? adxDeployerFallback : adxPrincipalId
// An existing ADX database: .../providers/Microsoft.Kusto/clusters/<cluster>/databases/<database>
// split on '/': [2] subscription, [4] resource group, [8] cluster, [10] database.
var useExistingAdx = !empty(adxDatabaseResourceId)
var adxIdParts = split(adxDatabaseResourceId, '/')
var adxSubscriptionId = useExistingAdx ? adxIdParts[2] : subscription().subscriptionId
var adxResourceGroupName = useExistingAdx ? adxIdParts[4] : resourceGroupName
var adxClusterName = useExistingAdx ? adxIdParts[8] : '${abbrs.kustoClusters}${resourceToken}'
var adxDatabase = useExistingAdx ? adxIdParts[10] : adxDatabaseName
// An existing event hub: .../providers/Microsoft.EventHub/namespaces/<namespace>/eventhubs/<hub>.
var useExistingEventHub = !empty(eventHubResourceId)
var eventHubIdParts = split(eventHubResourceId, '/')
var existingEventHubSubscriptionId = useExistingEventHub ? eventHubIdParts[2] : subscription().subscriptionId
var existingEventHubResourceGroupName = useExistingEventHub ? eventHubIdParts[4] : resourceGroupName
var existingEventHubNamespace = useExistingEventHub ? eventHubIdParts[8] : ''
var existingEventHubName = useExistingEventHub ? eventHubIdParts[10] : ''
var triggerEventHubs = useExistingEventHub ? existingEventHubName : triggerEventHubNames
// Diagnostic settings: on what this deployment creates always, on existing resources when asked.
var monitorAdx = useExistingAdx ? monitorExistingResources : true
var monitorEventHubs = useExistingEventHub ? monitorExistingResources : true
var eventHubsNamespaceName = useExistingEventHub ? existingEventHubNamespace : eventHubsName
var resourceGroupName = '${abbrs.resourcesResourceGroups}${environmentName}'
var deploymentContainerName = 'deployment-packages'
var deadLetterContainerName = 'deadletter'
var storageName = '${abbrs.storageStorageAccounts}${resourceToken}'
var eventHubsName = '${abbrs.eventHubNamespaces}${resourceToken}'
var keyVaultName = '${abbrs.keyVaultVaults}${resourceToken}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupName
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    workspaceName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    appInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    publisherPrincipalId: identity.outputs.principalId
  }
}

module network 'modules/network.bicep' = if (enablePrivateNetworking) {
  name: 'network'
  scope: rg
  params: {
    name: '${abbrs.networkVirtualNetworks}${resourceToken}'
    nsgNamePrefix: '${abbrs.networkNetworkSecurityGroups}${resourceToken}-'
    enableNatGateway: enableNatGateway
    natNamePrefix: '${abbrs.networkNatGateways}${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: storageName
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
    deploymentContainerName: deploymentContainerName
    deadLetterContainerName: deadLetterContainerName
    enablePrivateNetworking: enablePrivateNetworking
  }
}

module eventHubsNamespace 'modules/eventhubs.bicep' = if (!useExistingEventHub) {
  name: 'eventhubs'
  scope: rg
  params: {
    name: eventHubsName
    location: location
    tags: tags
    capacity: eventHubsCapacity
    eventHubs: eventHubs
    triggerEventHubNames: triggerEventHubNames
    receiverPrincipalId: identity.outputs.principalId
    schemaReaderPrincipalId: schemaReaderPrincipalId
    userPrincipalId: principalId
    userPrincipalType: principalType
    enablePrivateNetworking: enablePrivateNetworking
  }
}

// An existing event hub, in its own resource group (any subscription): consumer group and
// Data Receiver only.
module existingEventHub 'modules/eventhub-existing.bicep' = if (useExistingEventHub) {
  name: 'eventhub-existing'
  scope: resourceGroup(existingEventHubSubscriptionId, existingEventHubResourceGroupName)
  params: {
    namespaceName: existingEventHubNamespace
    name: existingEventHubName
    consumerGroup: triggerConsumerGroup
    receiverPrincipalId: identity.outputs.principalId
    schemaReaderPrincipalId: schemaReaderPrincipalId
  }
}

// A new cluster and database (the default); with adxDatabaseResourceId none is created.
module adxCluster 'modules/adx.bicep' = if (!useExistingAdx) {
  name: 'adx-cluster'
  scope: rg
  params: {
    clusterName: adxClusterName
    databaseName: adxDatabase
    location: location
    tags: tags
    skuName: adxSkuName
    skuTier: adxSkuTier
    capacity: adxCapacity
    enableStreamingIngest: adxEnableStreamingIngest
  }
}

// The database, new or existing, at its cluster's resource group: the ingestion file's KQL and
// the identity's Ingestor role; the deploying principal's roles only on a new cluster.
module adx 'modules/adx-database.bicep' = {
  name: 'adx'
  scope: resourceGroup(adxSubscriptionId, adxResourceGroupName)
  params: {
    clusterName: adxClusterName
    databaseName: adxDatabase
    ingestorClientId: identity.outputs.clientId
    userPrincipalId: useExistingAdx ? '' : adxDeployerId
    userPrincipalType: adxDeployerType
    // Generated from ingestion.yaml by scripts/gen-infra-kql.sh; a test fails when it is stale.
    databaseScript: loadTextContent('kql/database.kql')
    mappingsScript: loadTextContent('kql/mappings.kql')
  }
  dependsOn: [
    adxCluster
    rg
  ]
}

module keyVault 'modules/keyvault.bicep' = if (useKeyVault) {
  name: 'keyvault'
  scope: rg
  params: {
    name: keyVaultName
    location: location
    tags: tags
    readerPrincipalId: identity.outputs.principalId
    secrets: union(kafkaSecrets, schemaRegistrySecrets)
    enablePrivateNetworking: enablePrivateNetworking
  }
}

module blobEndpoint 'modules/private-endpoint.bicep' = if (enablePrivateNetworking) {
  name: 'pe-blob'
  scope: rg
  params: {
    name: '${abbrs.networkPrivateEndpoints}${storageName}-blob'
    location: location
    tags: tags
    serviceId: storage.outputs.id
    groupId: 'blob'
    dnsZoneName: 'privatelink.blob.${environment().suffixes.storage}'
    vnetId: network.outputs.id
    subnetId: network.outputs.privateEndpointSubnetId
  }
}

module queueEndpoint 'modules/private-endpoint.bicep' = if (enablePrivateNetworking) {
  name: 'pe-queue'
  scope: rg
  params: {
    name: '${abbrs.networkPrivateEndpoints}${storageName}-queue'
    location: location
    tags: tags
    serviceId: storage.outputs.id
    groupId: 'queue'
    dnsZoneName: 'privatelink.queue.${environment().suffixes.storage}'
    vnetId: network.outputs.id
    subnetId: network.outputs.privateEndpointSubnetId
  }
}

module eventHubsEndpoint 'modules/private-endpoint.bicep' = if (enablePrivateNetworking && !useExistingEventHub) {
  name: 'pe-eventhubs'
  scope: rg
  params: {
    name: '${abbrs.networkPrivateEndpoints}${eventHubsName}'
    location: location
    tags: tags
    serviceId: eventHubsNamespace.outputs.id
    groupId: 'namespace'
    dnsZoneName: eventHubsNamespace.outputs.privateDnsZoneName
    vnetId: network.outputs.id
    subnetId: network.outputs.privateEndpointSubnetId
  }
}

module keyVaultEndpoint 'modules/private-endpoint.bicep' = if (enablePrivateNetworking && useKeyVault) {
  name: 'pe-keyvault'
  scope: rg
  params: {
    name: '${abbrs.networkPrivateEndpoints}${keyVaultName}'
    location: location
    tags: tags
    serviceId: keyVault.outputs.id
    groupId: 'vault'
    dnsZoneName: keyVault.outputs.privateDnsZoneName
    vnetId: network.outputs.id
    subnetId: network.outputs.privateEndpointSubnetId
  }
}

// ADX's ingestion reports (FailedIngestion, SucceededIngestion, ADXIngestionBatching) into the
// workspace, at the cluster's resource group.
module adxDiagnostics 'modules/adx-diagnostics.bicep' = if (monitorAdx) {
  name: 'adx-diagnostics'
  scope: resourceGroup(adxSubscriptionId, adxResourceGroupName)
  params: {
    clusterName: adxClusterName
    workspaceId: monitoring.outputs.workspaceId
  }
  dependsOn: [
    adxCluster
    rg
  ]
}

// The Event Hubs namespace's metrics (IncomingMessages) into the workspace (table AzureMetrics).
module eventHubsDiagnostics 'modules/eventhubs-diagnostics.bicep' = if (monitorEventHubs) {
  name: 'eventhubs-diagnostics'
  scope: resourceGroup(existingEventHubSubscriptionId, existingEventHubResourceGroupName)
  params: {
    namespaceName: eventHubsNamespaceName
    workspaceId: monitoring.outputs.workspaceId
  }
  dependsOn: [
    eventHubsNamespace
    rg
  ]
}

// The health workbook (infra/workbook.json, docs/workbook.md) under Application Insights.
module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
    workspaceId: monitoring.outputs.workspaceId
    deadLetterAccountId: storage.outputs.id
    deadLetterContainerName: deadLetterContainerName
    adxDatabaseName: adxDatabase
  }
}

// The alerts (infra/alerts.json, docs/workbook.md#alerts), mailed to alertEmail when it is set.
module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    workspaceId: monitoring.outputs.workspaceId
    adxDatabaseName: adxDatabase
    alertEmail: alertEmail
    deadLetterThreshold: alertDeadLetterThreshold
    lagThresholdSeconds: alertLagSeconds
    noRecordsMinutes: alertNoRecordsMinutes
    adxFailureThreshold: alertAdxFailureThreshold
  }
  // The rules' queries are validated when created: let the settings that fill their tables come first.
  dependsOn: [
    adxDiagnostics
    eventHubsDiagnostics
  ]
}

// The namespace the trigger reads (new or existing), as its serviceBusEndpoint names it.
var triggerNamespaceHost = useExistingEventHub ? existingEventHub.outputs.fullyQualifiedNamespace : eventHubsNamespace.outputs.fullyQualifiedNamespace

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    name: '${abbrs.webSitesFunctions}${resourceToken}'
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobServiceUri: storage.outputs.blobEndpoint
    storageQueueServiceUri: storage.outputs.queueEndpoint
    deploymentContainerUri: storage.outputs.deploymentContainerUri
    deadLetterContainerUri: storage.outputs.deadLetterContainerUri
    appInsightsConnectionString: monitoring.outputs.connectionString
    adxIngestUri: adx.outputs.ingestUri
    adxEngineUri: adx.outputs.engineUri
    eventHubsNamespaceHost: triggerNamespaceHost
    eventHubName: triggerEventHubs
    eventHubConsumerGroup: triggerConsumerGroup
    eventHubHeaderEncoding: eventHubHeaderEncoding
    enableEventHubTrigger: enableEventHubTrigger
    kafkaBrokers: kafkaBrokers
    kafkaTopic: kafkaTopic
    kafkaConsumerGroup: kafkaConsumerGroup
    kafkaProtocol: kafkaProtocol
    kafkaSaslMechanism: kafkaSaslMechanism
    kafkaDataType: kafkaDataType
    kafkaUsernameSecretUri: kafkaUsesCredentials ? '${keyVault.outputs.uri}secrets/kafka-username' : ''
    kafkaPasswordSecretUri: kafkaUsesCredentials ? '${keyVault.outputs.uri}secrets/kafka-password' : ''
    schemaRegistryUrl: schemaRegistryUrl
    schemaRegistryTimeout: schemaRegistryTimeout
    schemaRegistryUsernameSecretUri: schemaRegistryUsesCredentials ? '${keyVault.outputs.uri}secrets/schema-registry-username' : ''
    schemaRegistryPasswordSecretUri: schemaRegistryUsesCredentials ? '${keyVault.outputs.uri}secrets/schema-registry-password' : ''
    azureSchemaRegistryNamespace: enableAzureSchemaRegistry ? triggerNamespaceHost : ''
    retryMaxCount: retryMaxCount
    retryMinInterval: retryMinInterval
    retryMaxInterval: retryMaxInterval
    appSubnetId: enablePrivateNetworking ? network.outputs.appSubnetId : ''
    pythonVersion: pythonVersion
  }
  dependsOn: [
    blobEndpoint
    queueEndpoint
    eventHubsEndpoint
    keyVaultEndpoint
  ]
}

// azd stores these in the environment (`azd env get-values`); the kafka-adx CLI and producers use them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_CLIENT_ID string = identity.outputs.clientId
output FUNCTION_APP_NAME string = functionApp.outputs.name
// The health workbook's resource id (open it under Application Insights > Workbooks).
output MONITORING_WORKBOOK_ID string = workbook.outputs.id
output ADX_CLUSTER_NAME string = adx.outputs.clusterName
output ADX_DATABASE string = adx.outputs.databaseName
output ADX_INGEST_URI string = adx.outputs.ingestUri
output ADX_ENGINE_URI string = adx.outputs.engineUri
output DEADLETTER_BLOB_URI string = storage.outputs.deadLetterContainerUri
output EVENTHUB_NAMESPACE string = useExistingEventHub ? existingEventHubNamespace : eventHubsNamespace.outputs.name
output EVENTHUB_NAME string = triggerEventHubs
// The app's fixed outbound address (private networking with the NAT gateway; empty otherwise).
output FUNCTION_OUTBOUND_IP string = enablePrivateNetworking && enableNatGateway ? network.outputs.natPublicIp : ''
output KAFKA_BOOTSTRAP_SERVERS string = useExistingEventHub ? existingEventHub.outputs.kafkaBootstrapServers : eventHubsNamespace.outputs.kafkaBootstrapServers
