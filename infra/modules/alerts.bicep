// Log search alerts over the Log Analytics workspace (docs/workbook.md#alerts): dead letters
// above a threshold, lag above a threshold, no records handled while Event Hubs received some,
// and ADX ingestion failures. Their queries are ../alerts.json (tests/infra/test_workbook.py holds
// them to the metric catalogue and the documented tables). With an e-mail address, an action
// group mails each alert; without one the alerts fire in the portal only.

@description('Azure region of the alert rules.')
param location string

@description('Tags for every resource.')
param tags object

@description('Resource id of the Log Analytics workspace the rules query.')
param workspaceId string

@description('ADX database whose ingestion failures alert (the cluster may hold others).')
param adxDatabaseName string

@description('E-mail address the alerts go to (empty: no action group, the alerts show in the portal only).')
param alertEmail string = ''

@description('Dead letters in 15 minutes, per table, above which the dead-letter alert fires (0: any dead letter).')
@minValue(0)
param deadLetterThreshold int = 0

@description('End-to-end lag in seconds, per topic, above which the lag alert fires (the worst batch of 15 minutes).')
@minValue(1)
param lagThresholdSeconds int = 300

@description('Minutes without a record ingested or dead-lettered while Event Hubs received messages before the no-records alert fires.')
@allowed([
  5
  10
  15
  30
  45
  60
  120
  180
  240
  300
  360
  1440
])
param noRecordsMinutes int = 15

@description('ADX ingestion failures in 15 minutes, per table, above which the ADX alert fires (0: any failure).')
@minValue(0)
param adxFailureThreshold int = 0

@description('Prefix of the rule and action group names.')
param namePrefix string = 'kafka-adx'

var queries = loadJsonContent('../alerts.json')
var hasEmail = !empty(alertEmail)
var actionGroups = hasEmail ? [
  actionGroup.id
] : []
// The window as an ISO 8601 duration in its usual form (PT1H, not PT60M).
var windowDurations = {
  m5: 'PT5M'
  m10: 'PT10M'
  m15: 'PT15M'
  m30: 'PT30M'
  m45: 'PT45M'
  m60: 'PT1H'
  m120: 'PT2H'
  m180: 'PT3H'
  m240: 'PT4H'
  m300: 'PT5H'
  m360: 'PT6H'
  m1440: 'P1D'
}
var noRecordsWindow = windowDurations['m${noRecordsMinutes}']
var everyFailingPeriod = {
  numberOfEvaluationPeriods: 1
  minFailingPeriodsToAlert: 1
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (hasEmail) {
  name: '${namePrefix}-operators'
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'kafka-adx'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

resource deadLetters 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-dead-letters'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'kafka-adx: records dead-lettered'
    description: 'More than deadLetterThreshold records of a table were dead-lettered in 15 minutes (metric kafka_adx.records.dead_lettered). kafka-adx deadletters list shows why.'
    severity: 2
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: queries.deadLetters
          timeAggregation: 'Total'
          metricMeasureColumn: 'Sum'
          dimensions: [
            {
              name: 'Table'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: deadLetterThreshold
          failingPeriods: everyFailingPeriod
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

resource lag 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-lag'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'kafka-adx: lag above threshold'
    description: 'A batch of a topic was more than lagThresholdSeconds behind (now minus its oldest record; metric kafka_adx.lag) in the last 15 minutes.'
    severity: 2
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: queries.lag
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'Max'
          dimensions: [
            {
              name: 'Topic'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: lagThresholdSeconds
          failingPeriods: everyFailingPeriod
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

resource noRecords 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-no-records'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'kafka-adx: no records while the source has data'
    description: 'Event Hubs received messages (IncomingMessages) in the last noRecordsMinutes minutes but kafka-adx ingested or dead-lettered none: the function app is stopped, failing or cannot read.'
    severity: 1
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: noRecordsWindow
    criteria: {
      allOf: [
        {
          query: queries.noRecords
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: everyFailingPeriod
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

resource adxFailures 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-adx-failures'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'kafka-adx: ADX ingestion failures'
    description: 'ADX reported more than adxFailureThreshold failed ingestions of a table in 15 minutes (FailedIngestion). The workbook links each to its batch and dead letters.'
    severity: 2
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: replace(queries.adxFailures, '__ADX_DATABASE__', adxDatabaseName)
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'Table'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: adxFailureThreshold
          failingPeriods: everyFailingPeriod
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

output actionGroupId string = hasEmail ? actionGroup.id : ''
output ruleNames array = [
  deadLetters.name
  lag.name
  noRecords.name
  adxFailures.name
]
