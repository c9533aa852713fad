// The Event Hubs namespace's platform metrics into the Log Analytics workspace (table
// AzureMetrics), so that the "no records while the source has data" alert and the workbook can
// set IncomingMessages beside what kafka-adx handled. A diagnostic setting on the namespace (new,
// or existing with monitorExistingResources), deployed at the namespace's resource group.

@description('Name of the Event Hubs namespace (created by eventhubs.bicep, or existing).')
param namespaceName string

@description('Resource id of the Log Analytics workspace to send the metrics to.')
param workspaceId string

@description('Name of the diagnostic setting (a namespace holds at most five).')
param settingName string = 'kafka-adx-metrics'

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' existing = {
  name: namespaceName
}

resource metrics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: settingName
  scope: namespace
  properties: {
    workspaceId: workspaceId
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}
