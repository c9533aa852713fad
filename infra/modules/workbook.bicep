// The pipeline's health workbook (docs/workbook.md): its tiles are ../workbook.json, loaded as
// text and given the resource ids it links to. It is shown under the Application Insights
// component (sourceId) and queries the Log Analytics workspace behind it, where the metrics
// (AppMetrics), the function app's logs (AppTraces), ADX's ingestion reports and the Event Hubs
// metrics land.

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Resource id of the Application Insights component the workbook belongs to.')
param appInsightsId string

@description('Resource id of the Log Analytics workspace its queries run in.')
param workspaceId string

@description('Resource id of the storage account holding the dead letters (for links to the blobs).')
param deadLetterAccountId string

@description('Container of the dead letters in that account.')
param deadLetterContainerName string

@description('ADX database whose ingestion reports are charted (the cluster may hold others).')
param adxDatabaseName string

@description('Title of the workbook in the portal.')
param displayName string = 'kafka-adx pipeline'

// Placeholders of workbook.json; tests/infra/test_workbook.py checks that each is replaced.
// (One replace per line: the Bicep CLI's multi-line function calls are newer than pycep.)
var template = loadTextContent('../workbook.json')
var withWorkspace = replace(template, '__WORKSPACE_ID__', workspaceId)
var withAppInsights = replace(withWorkspace, '__APPINSIGHTS_ID__', appInsightsId)
var withAccount = replace(withAppInsights, '__DEADLETTER_ACCOUNT_ID__', deadLetterAccountId)
var withContainer = replace(withAccount, '__DEADLETTER_CONTAINER__', deadLetterContainerName)
var withDatabase = replace(withContainer, '__ADX_DATABASE__', adxDatabaseName)
// environment().portal: the portal URL of the cloud deployed to (sovereign clouds have their own).
var serializedData = replace(withDatabase, '__PORTAL__', environment().portal)

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, appInsightsId, 'kafka-adx-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: appInsightsId
    serializedData: serializedData
  }
}

output id string = workbook.id
