// What kafka-adx puts into an ADX database, new (adx.bicep) or existing (adxDatabaseResourceId):
// only the KQL the ingestion file owns (tables, policies, then the mappings, going on past a
// mapping that exists so none is ever replaced), the managed identity as the database's Ingestor,
// and, when asked, the deploying principal as Viewer and Ingestor. Deployed at the resource group
// of the cluster, which may be in another subscription. The cluster's URIs are read from the
// cluster itself.

@description('Name of the cluster (created by adx.bicep or existing).')
param clusterName string

@description('Name of the database in that cluster (the ingestion file\'s `database`).')
param databaseName string

@description('Client (application) id of the managed identity that ingests.')
param ingestorClientId string

@description('The deploying principal for ADX: a user\'s object id or e-mail, or a service principal\'s application (client) id; granted Viewer and Ingestor (empty: none).')
param userPrincipalId string = ''

@description('ADX principal type of userPrincipalId: User, or App for a service principal.')
@allowed([
  'User'
  'App'
])
param userPrincipalType string = 'User'

@description('KQL run in the database on every deployment: tables, policies, views (idempotent commands only).')
param databaseScript string

@description('The ingestion mappings, as .create commands, run after the schema script and going on past a mapping that exists.')
param mappingsScript string

resource cluster 'Microsoft.Kusto/clusters@2023-08-15' existing = {
  name: clusterName
}

resource database 'Microsoft.Kusto/clusters/databases@2023-08-15' existing = {
  parent: cluster
  name: databaseName
}

// Control commands on one database must not overlap: the script runs first, then the principal
// assignments, one after the other.
resource schema 'Microsoft.Kusto/clusters/databases/scripts@2023-08-15' = {
  parent: database
  name: 'kafka-adx-schema'
  properties: {
    scriptContent: databaseScript
    forceUpdateTag: uniqueString(databaseScript)
    continueOnErrors: false
  }
}

// A mapping that exists fails its .create: go on, so a rerun creates only the missing ones and
// never replaces one (the mapping a running Kafka Connect sink uses stays as it is).
resource mappings 'Microsoft.Kusto/clusters/databases/scripts@2023-08-15' = {
  parent: database
  name: 'kafka-adx-mappings'
  properties: {
    scriptContent: mappingsScript
    forceUpdateTag: uniqueString(mappingsScript)
    continueOnErrors: true
  }
  dependsOn: [
    schema
  ]
}

resource ingestor 'Microsoft.Kusto/clusters/databases/principalAssignments@2023-08-15' = {
  parent: database
  name: 'kafka-adx-ingestor'
  properties: {
    principalId: ingestorClientId
    principalType: 'App'
    role: 'Ingestor'
    tenantId: tenant().tenantId
  }
  dependsOn: [
    mappings
  ]
}

resource userViewer 'Microsoft.Kusto/clusters/databases/principalAssignments@2023-08-15' = if (!empty(userPrincipalId)) {
  parent: database
  name: 'kafka-adx-user-viewer'
  properties: {
    principalId: userPrincipalId
    principalType: userPrincipalType
    role: 'Viewer'
    tenantId: tenant().tenantId
  }
  dependsOn: [
    ingestor
  ]
}

resource userIngestor 'Microsoft.Kusto/clusters/databases/principalAssignments@2023-08-15' = if (!empty(userPrincipalId)) {
  parent: database
  name: 'kafka-adx-user-ingestor'
  properties: {
    principalId: userPrincipalId
    principalType: userPrincipalType
    role: 'Ingestor'
    tenantId: tenant().tenantId
  }
  dependsOn: [
    userViewer
  ]
}

output clusterName string = cluster.name
output engineUri string = cluster.properties.uri
output ingestUri string = cluster.properties.dataIngestionUri
output databaseName string = database.name
