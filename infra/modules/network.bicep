// Optional private networking: a virtual network with a subnet for the function app's VNet
// integration (delegated to Microsoft.App/environments, as Flex Consumption requires) and a
// subnet for private endpoints. Both subnets have a network security group. Optionally a NAT
// gateway with one static public IP on the app subnet: the app's outbound traffic to public
// endpoints (ADX, Application Insights, Entra ID, a Kafka broker) then leaves from that one
// address, which a broker's or cluster's IP allow list can name (docs/deploy.md, outbound access).

@description('Virtual network name.')
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Name prefix of the network security groups.')
param nsgNamePrefix string

@description('Address space of the virtual network.')
param addressPrefix string = '10.40.0.0/16'

@description('Subnet of the function app integration.')
param appSubnetPrefix string = '10.40.1.0/24'

@description('Subnet of the private endpoints.')
param privateEndpointSubnetPrefix string = '10.40.2.0/24'

@description('Put a NAT gateway with a static public IP on the app subnet (a fixed outbound address).')
param enableNatGateway bool = false

@description('Name prefix of the NAT gateway and its public IP.')
param natNamePrefix string = '${name}-nat'

resource appNsg 'Microsoft.Network/networkSecurityGroups@2024-01-01' = {
  name: '${nsgNamePrefix}app'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource endpointNsg 'Microsoft.Network/networkSecurityGroups@2024-01-01' = {
  name: '${nsgNamePrefix}endpoints'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource natIp 'Microsoft.Network/publicIPAddresses@2024-01-01' = if (enableNatGateway) {
  name: '${natNamePrefix}-ip'
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    publicIPAllocationMethod: 'Static'
    publicIPAddressVersion: 'IPv4'
  }
}

resource nat 'Microsoft.Network/natGateways@2024-01-01' = if (enableNatGateway) {
  name: natNamePrefix
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    idleTimeoutInMinutes: 4
    publicIpAddresses: [
      {
        id: natIp.id
      }
    ]
  }
}

// The app subnet's NAT gateway reference, or none.
var appSubnetNat = enableNatGateway ? {
  id: nat.id
} : null

resource vnet 'Microsoft.Network/virtualNetworks@2024-01-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'app'
        properties: {
          addressPrefix: appSubnetPrefix
          networkSecurityGroup: {
            id: appNsg.id
          }
          natGateway: appSubnetNat
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: 'private-endpoints'
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          networkSecurityGroup: {
            id: endpointNsg.id
          }
          privateEndpointNetworkPolicies: 'Enabled'
        }
      }
    ]
  }
}

output id string = vnet.id
output appSubnetId string = '${vnet.id}/subnets/app'
output privateEndpointSubnetId string = '${vnet.id}/subnets/private-endpoints'
// The app's outbound address with the NAT gateway (empty without).
output natPublicIp string = enableNatGateway ? natIp.properties.ipAddress : ''
