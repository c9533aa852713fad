// Key Vault for the credentials of a non-Azure Kafka broker (Confluent Cloud, self-hosted) and of
// a Confluent-compatible schema registry. Neither the Kafka trigger nor such a registry takes a
// managed identity, so their user names and passwords are app settings that are Key Vault
// references, resolved by the platform with the managed identity.

@description('Vault name (3-24 characters).')
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Principal id of the managed identity that reads the secrets.')
param readerPrincipalId string

@secure()
@description('The secrets, name -> value: kafka-username and kafka-password, schema-registry-username and schema-registry-password, those the deployment uses.')
param secrets object

@description('Close the public endpoint; the app reaches the vault through a private endpoint.')
param enablePrivateNetworking bool = false

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var publicNetworkAccess = enablePrivateNetworking ? 'Disabled' : 'Enabled'
var defaultAction = enablePrivateNetworking ? 'Deny' : 'Allow'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  //checkov:skip=CKV_AZURE_189:Public network access is disabled with enablePrivateNetworking=true; without VNet integration the platform resolves Key Vault references over the public endpoint (Entra ID and RBAC only).
  //checkov:skip=CKV_AZURE_109:The firewall denies by default with enablePrivateNetworking=true; see CKV_AZURE_189.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    enablePurgeProtection: true
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: defaultAction
    }
  }
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [for item in items(secrets): {
  //checkov:skip=CKV_AZURE_41:The broker's and the registry's owners rotate these credentials; an expiry date here would silently stop ingestion when it passes.
  parent: vault
  name: item.key
  properties: {
    value: item.value
    contentType: 'text/plain'
  }
}]

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, readerPrincipalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: readerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output id string = vault.id
output name string = vault.name
// Key Vault's private DNS zone is privatelink.vaultcore.<suffix> where the vaults themselves are
// <name>.vault.<suffix> (environment().suffixes.keyvaultDns): so in the public cloud, Azure China
// and Azure Government alike (learn.microsoft.com/azure/private-link/private-endpoint-dns).
output privateDnsZoneName string = 'privatelink${replace(environment().suffixes.keyvaultDns, '.vault.', '.vaultcore.')}'
// <uri>secrets/<name> is a secret's versionless URI: a rotated secret is picked up without
// redeploying.
output uri string = vault.properties.vaultUri
