// One event hub, its consumer groups and, for the hub the function reads, the Data Receiver role
// scoped to this hub alone.

@description('Name of the existing namespace.')
param namespaceName string

@description('Event hub name (the Kafka topic name for Kafka producers).')
param name string

@description('Partitions (Kafka partitions).')
@minValue(1)
@maxValue(32)
param partitionCount int = 4

@description('Days a message is kept (Standard tier: 1-7).')
@minValue(1)
@maxValue(7)
param messageRetentionInDays int = 1

@description('Consumer group names to create.')
param consumerGroups array = []

@description('The event hub(s) the function reads, comma-separated: only those grant the receiver role.')
param triggerEventHubNames string

@description('Principal granted Azure Event Hubs Data Receiver if this is the trigger\'s hub (empty: none).')
param receiverPrincipalId string = ''

var eventHubsDataReceiver = 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde'
var isTriggerHub = contains(split(triggerEventHubNames, ','), name)

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' existing = {
  name: namespaceName
}

resource hub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: namespace
  name: name
  properties: {
    partitionCount: partitionCount
    messageRetentionInDays: messageRetentionInDays
  }
}

resource groups 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = [for group in consumerGroups: {
  parent: hub
  name: group
}]

resource receiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (isTriggerHub && !empty(receiverPrincipalId)) {
  name: guid(hub.id, receiverPrincipalId, eventHubsDataReceiver)
  scope: hub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventHubsDataReceiver)
    principalId: receiverPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output id string = hub.id
output name string = hub.name
