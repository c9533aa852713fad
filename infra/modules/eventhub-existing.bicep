// An existing event hub the function reads (eventHubResourceId): nothing of the namespace is
// created or changed; the trigger's consumer group is created on the hub and the managed identity
// gets Azure Event Hubs Data Receiver on that hub alone. Deployed at the namespace's resource
// group, which may be in another subscription.

@description('Name of the existing namespace.')
param namespaceName string

@description('Name of the existing event hub.')
param name string

@description('Consumer group of the trigger, created on the hub ($Default exists already).')
param consumerGroup string

@description('Principal id of the managed identity used by the function app.')
param receiverPrincipalId string

@description('Principal granted Schema Registry Reader on the namespace, to read its Azure Schema Registry (empty: none).')
param schemaReaderPrincipalId string = ''

var eventHubsDataReceiver = 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde'
var schemaRegistryReader = '2c56ea50-c6b3-40a6-83c0-9d98858bc7d2'
var createConsumerGroup = consumerGroup != '$Default'

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' existing = {
  name: namespaceName
}

resource hub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' existing = {
  parent: namespace
  name: name
}

resource group 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = if (createConsumerGroup) {
  parent: hub
  name: consumerGroup
}

resource receiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hub.id, receiverPrincipalId, eventHubsDataReceiver)
  scope: hub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventHubsDataReceiver)
    principalId: receiverPrincipalId
    principalType: 'ServicePrincipal'
  }
}

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

// serviceBusEndpoint is https://<namespace>.<the cloud's Service Bus suffix>:443/: the host the
// trigger connects to, in any cloud.
var namespaceHost = split(split(namespace.properties.serviceBusEndpoint, '//')[1], ':')[0]

output id string = hub.id
output name string = hub.name
output fullyQualifiedNamespace string = namespaceHost
output kafkaBootstrapServers string = '${namespaceHost}:9093'
