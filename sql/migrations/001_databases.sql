-- The three databases of the data contract (DESIGN.md).
CREATE DATABASE IF NOT EXISTS market COMMENT 'normalized exchange market data';
CREATE DATABASE IF NOT EXISTS iot COMMENT 'sensor readings from MQTT feeds';
CREATE DATABASE IF NOT EXISTS ops COMMENT 'what the pipeline and Dagster found: ledger, audits, dead letters';
