// ClinicalFed serverless aggregator: the federation store (a storage account with one private container, reached only
// with Microsoft Entra ID), the Functions host's own storage, a Linux plan and the Function App that runs the custom
// handler (functions/README.md). Deploy into a resource group:
//
//   az deployment group create -g <resource-group> -f functions/deploy/main.bicep -p appName=<globally unique name>
//
// then deploy the published handler with `az functionapp deployment source config-zip` (functions/README.md).

@description('Name of the Function App (globally unique: <appName>.azurewebsites.net). Lower-case letters, digits and hyphens.')
@minLength(2)
@maxLength(40)
param appName string

@description('Region of every resource.')
param location string = resourceGroup().location

@description('Hosting plan: Y1 (Linux Consumption), EP1 (Elastic Premium) or a dedicated App Service plan (B1, P1v3).')
@allowed([
  'Y1'
  'EP1'
  'B1'
  'P1v3'
])
param planSku string = 'Y1'

@description('Storage account of the federation store (3 to 24 lower-case letters and digits).')
@minLength(3)
@maxLength(24)
param storeAccountName string = 'cfstore${uniqueString(resourceGroup().id)}'

@description('Storage account the Functions host keeps its own state in (timer schedule monitor, keys, deployment package).')
@minLength(3)
@maxLength(24)
param hostAccountName string = 'cfhost${uniqueString(resourceGroup().id)}'

@description('Container of the federation store (CLINICALFED_STORE_CONTAINER).')
@minLength(3)
@maxLength(63)
param storeContainerName string = 'federation'

@description('Optional folder inside the container (CLINICALFED_STORE_PREFIX), so that several stores can share one container; empty for its root.')
param storePrefix string = ''

@description('NCRONTAB schedule (six fields, UTC) of the AggregateRound timer (CLINICALFED_AGGREGATE_SCHEDULE). Default: every five minutes.')
param aggregateSchedule string = '0 */5 * * * *'

var planTiers = {
  Y1: 'Dynamic'
  EP1: 'ElasticPremium'
  B1: 'Basic'
  P1v3: 'PremiumV3'
}
var isConsumption = planSku == 'Y1'
var isElasticPremium = planSku == 'EP1'

// Built-in role definitions (the same IDs in every Azure tenant).
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var storageBlobDelegator = 'db58b8e5-c6ad-4a2a-8342-4fbd6fbda0e1'

// ---- the federation store ----------------------------------------------------------------------------------------

// No account keys: everything (the handler, and the user-delegation SAS of upload tickets) goes through Entra ID.
resource store 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storeAccountName
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_ZRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }
}

resource storeBlobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: store
  name: 'default'
  properties: {
    // Objects are write-once; soft delete keeps an accidental deletion recoverable for a week.
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource storeContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: storeBlobs
  name: storeContainerName
  properties: {
    publicAccess: 'None'
  }
}

// ---- the Functions host's storage --------------------------------------------------------------------------------

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: hostAccountName
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }
}

var hostStorageConnection = 'DefaultEndpointsProtocol=https;AccountName=${hostStorage.name};EndpointSuffix=${environment().suffixes.storage};AccountKey=${hostStorage.listKeys().keys[0].value}'

// ---- plan and Function App ---------------------------------------------------------------------------------------

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: '${appName}-plan'
  location: location
  kind: isConsumption ? 'functionapp' : (isElasticPremium ? 'elastic' : 'linux')
  sku: {
    name: planSku
    tier: planTiers[planSku]
  }
  properties: {
    reserved: true // Linux
  }
}

var baseSettings = [
  {
    name: 'AzureWebJobsStorage'
    value: hostStorageConnection
  }
  {
    name: 'FUNCTIONS_EXTENSION_VERSION'
    value: '~4'
  }
  {
    // A custom handler: host.json's customHandler section starts the ClinicalFed.Functions executable.
    name: 'FUNCTIONS_WORKER_RUNTIME'
    value: 'custom'
  }
  {
    name: 'CLINICALFED_AGGREGATE_SCHEDULE'
    value: aggregateSchedule
  }
  {
    // Blob endpoint of the store account, reached with the app's managed identity (DefaultAzureCredential).
    name: 'CLINICALFED_STORE_SERVICE_URI'
    value: store.properties.primaryEndpoints.blob
  }
  {
    name: 'CLINICALFED_STORE_CONTAINER'
    value: storeContainer.name
  }
  {
    name: 'CLINICALFED_STORE_PREFIX'
    value: storePrefix
  }
]

// Elastic Premium keeps the app's files on an Azure Files share of the host storage account.
var contentSettings = isElasticPremium ? [
  {
    name: 'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING'
    value: hostStorageConnection
  }
  {
    name: 'WEBSITE_CONTENTSHARE'
    value: toLower(appName)
  }
] : []

resource app 'Microsoft.Web/sites@2023-12-01' = {
  name: appName
  location: location
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    reserved: true
    httpsOnly: true
    siteConfig: {
      // A dedicated plan must stay loaded for the timer to fire; Consumption and Elastic Premium wake up for it.
      alwaysOn: !isConsumption && !isElasticPremium
      ftpsState: 'Disabled'
      minTlsVersion: '1.2'
      http20Enabled: true
      appSettings: concat(baseSettings, contentSettings)
    }
  }
}

// ---- the app's identity on the store -----------------------------------------------------------------------------

// Read and write blobs (the handler's store) ...
resource blobContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(store.id, app.id, storageBlobDataContributor)
  scope: store
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// ... and get user delegation keys, which sign the upload tickets' SAS URLs (account scope).
resource blobDelegator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(store.id, app.id, storageBlobDelegator)
  scope: store
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDelegator)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

output functionAppName string = app.name
output functionAppUrl string = 'https://${app.properties.defaultHostName}/api'
output storeBlobEndpoint string = store.properties.primaryEndpoints.blob
output storeContainer string = storeContainer.name
output principalId string = app.identity.principalId
