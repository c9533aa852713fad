// ADX's own ingestion reports into the Log Analytics workspace: a diagnostic setting on the
// cluster (new, or existing with monitorExistingResources) with the categories FailedIngestion,
// SucceededIngestion and IngestionBatching, in resource-specific tables (FailedIngestion,
// SucceededIngestion, ADXIngestionBatching: learn.microsoft.com/azure/azure-monitor/reference/
// supported-logs/microsoft-kusto-clusters-logs). The workbook and the ADX failure alert read them.
// Deployed at the cluster's resource group, which may be in another subscription.

@description('Name of the cluster (created by adx.bicep, or existing).')
param clusterName string

@description('Resource id of the Log Analytics workspace to send the reports to.')
param workspaceId string

@description('Name of the diagnostic setting (a cluster holds at most five).')
param settingName string = 'kafka-adx-ingestion'

resource cluster 'Microsoft.Kusto/clusters@2023-08-15' existing = {
  name: clusterName
}

resource ingestionLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: settingName
  scope: cluster
  properties: {
    workspaceId: workspaceId
    // Dedicated: one table per category instead of the legacy AzureDiagnostics table.
    logAnalyticsDestinationType: 'Dedicated'
    logs: [
      {
        category: 'FailedIngestion'
        enabled: true
      }
      {
        category: 'SucceededIngestion'
        enabled: true
      }
      {
        category: 'IngestionBatching'
        enabled: true
      }
    ]
  }
}
