// A private endpoint for one sub-resource (blob, queue, namespace, vault) with its private DNS
// zone linked to the virtual network, so the service's usual host name resolves privately.

@description('Private endpoint name.')
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Resource id of the service.')
param serviceId string

@description('Sub-resource (group id): blob, queue, namespace, vault.')
param groupId string

@description('Private DNS zone of the sub-resource, privatelink.<service>.<the cloud\'s suffix> (computed from environment() or the service\'s own endpoint by the caller).')
param dnsZoneName string

@description('Virtual network to link the zone to.')
param vnetId string

@description('Subnet of the private endpoint.')
param subnetId string

resource zone 'Microsoft.Network/privateDnsZones@2020-06-01' = {
  name: dnsZoneName
  location: 'global'
  tags: tags
}

resource zoneLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = {
  parent: zone
  name: 'vnet-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnetId
    }
  }
}

resource endpoint 'Microsoft.Network/privateEndpoints@2024-01-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    subnet: {
      id: subnetId
    }
    privateLinkServiceConnections: [
      {
        name: name
        properties: {
          privateLinkServiceId: serviceId
          groupIds: [
            groupId
          ]
        }
      }
    ]
  }
}

resource zoneGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-01-01' = {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: replace(dnsZoneName, '.', '-')
        properties: {
          privateDnsZoneId: zone.id
        }
      }
    ]
  }
}

output id string = endpoint.id
