// Event Hubs namespace (Standard, Kafka endpoint on, local/SAS authentication off) and its event
// hubs. Kafka producers write through the Kafka endpoint (port 9093) with Entra ID (OAUTHBEARER);
// the function reads with the Event Hubs trigger and the managed identity.

@description('Namespace name.')
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Throughput units.')
@minValue(1)
@maxValue(40)
param capacity int = 1

@description('Event hubs: [{ name, partitionCount, messageRetentionInDays, consumerGroups: [names] }].')
param eventHubs array

@description('The event hub(s) the function reads, comma-separated; the identity gets Data Receiver on those only.')
param triggerEventHubNames string

@description('Principal id of the managed identity used by the function app.')
param receiverPrincipalId string

@description('Principal granted Schema Registry Reader on the namespace, to read its Azure Schema Registry (empty: none).')
param schemaReaderPrincipalId string = ''

@description('Object id of the deploying user, granted Data Sender on the namespace to produce test data (empty: none).')
param userPrincipalId string = ''

@description('Principal type of userPrincipalId: User, or ServicePrincipal when azd signs in as one (AZURE_PRINCIPAL_TYPE).')
@allowed([
  'User'
  'ServicePrincipal'
])
param userPrincipalType string = 'User'

@description('Close the public endpoint; the app reaches the namespace through a private endpoint.')
param enablePrivateNetworking bool = false

var publicNetworkAccess = enablePrivateNetworking ? 'Disabled' : 'Enabled'
var eventHubsDataSender = '2b629674-e913-4c01-ae53-ef4638d8f975'
var schemaRegistryReader = '2c56ea50-c6b3-40a6-83c0-9d98858bc7d2'

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
    capacity: capacity
  }
  properties: {
    disableLocalAuth: true
    kafkaEnabled: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: publicNetworkAccess
  }
}

module hubs 'eventhub.bicep' = [for hub in eventHubs: {
  name: 'eventhub-${hub.name}'
  params: {
    namespaceName: namespace.name
    name: hub.name
    partitionCount: hub.partitionCount
    messageRetentionInDays: hub.messageRetentionInDays
    consumerGroups: hub.consumerGroups
    triggerEventHubNames: triggerEventHubNames
    receiverPrincipalId: receiverPrincipalId
  }
}]

// Kafka producers of the deploying user authenticate with Entra ID (SASL OAUTHBEARER).
resource userSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(namespace.id, userPrincipalId, eventHubsDataSender)
  scope: namespace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventHubsDataSender)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}

// serviceBusEndpoint is https://<namespace>.<the cloud's Service Bus suffix>:443/: the host the
// trigger and Kafka clients connect to, in any cloud (no public-cloud name is written here).
var namespaceHost = split(split(namespace.properties.serviceBusEndpoint, '//')[1], ':')[0]

// Schemas are read by id across the namespace's schema groups: the reader role (schemas only, not
// events) on the namespace.
resource schemaReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(schemaReaderPrincipalId)) {
  name: guid(namespace.id, schemaReaderPrincipalId, schemaRegistryReader)
  scope: namespace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', schemaRegistryReader)
    principalId: schemaReaderPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output id string = namespace.id
output name string = namespace.name
output fullyQualifiedNamespace string = namespaceHost
output kafkaBootstrapServers string = '${namespaceHost}:9093'
// The namespace's private DNS zone is privatelink.<that suffix> in every cloud
// (learn.microsoft.com/azure/private-link/private-endpoint-dns).
output privateDnsZoneName string = 'privatelink.${substring(namespaceHost, length(namespace.name) + 1)}'
