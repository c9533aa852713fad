// A new Azure Data Explorer cluster and its database (the default). What runs inside the database
// (the ingestion file's KQL, the principal assignments) is adx-database.bicep, the same module
// an existing cluster's database gets.

@description('Cluster name (4-22 lowercase letters and digits, starting with a letter).')
param clusterName string

@description('Database name (the ingestion file\'s `database`).')
param databaseName string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Cluster SKU; the Dev SKU has no SLA and is the cheapest.')
param skuName string = 'Dev(No SLA)_Standard_E2a_v4'

@description('Cluster SKU tier: Basic for Dev SKUs, Standard otherwise.')
@allowed([
  'Basic'
  'Standard'
])
param skuTier string = 'Basic'

@description('Instance count (1 for Dev SKUs, 2 or more otherwise).')
param capacity int = 1

@description('Enable streaming ingestion on the cluster (needed by streaming routes).')
param enableStreamingIngest bool = false

@description('How long data is kept (ISO 8601 duration).')
param softDeletePeriod string = 'P365D'

@description('How long data is kept in the hot cache (ISO 8601 duration).')
param hotCachePeriod string = 'P31D'

resource cluster 'Microsoft.Kusto/clusters@2023-08-15' = {
  //checkov:skip=CKV_AZURE_75:Infrastructure (double) encryption can only be chosen when a cluster is created and is left off for the low-cost Dev SKU default; disk encryption is on. Set enableDoubleEncryption for a production cluster.
  name: clusterName
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuTier
    capacity: capacity
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    enableDiskEncryption: true
    enableStreamingIngest: enableStreamingIngest
    enablePurge: false
    trustedExternalTenants: []
    publicNetworkAccess: 'Enabled'
    restrictOutboundNetworkAccess: 'Enabled'
    allowedFqdnList: []
  }
}

resource database 'Microsoft.Kusto/clusters/databases@2023-08-15' = {
  parent: cluster
  name: databaseName
  location: location
  kind: 'ReadWrite'
  properties: {
    softDeletePeriod: softDeletePeriod
    hotCachePeriod: hotCachePeriod
  }
}

output clusterName string = cluster.name
output databaseName string = database.name
