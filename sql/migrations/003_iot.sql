-- Sensor readings from MQTT feeds.
CREATE TABLE IF NOT EXISTS iot.readings
(
    device_id String COMMENT 'device that produced the reading',
    sensor LowCardinality(String) COMMENT 'sensor type, e.g. temperature',
    seq UInt64 COMMENT 'per-device, per-sensor sequence number (0 where devices send none)',
    value Float64 COMMENT 'measured value in unit',
    unit LowCardinality(String) COMMENT 'unit of value, e.g. C, %, hPa',
    device_ts DateTime64(6, 'UTC') COMMENT 'event time stamped by the device',
    received_ts DateTime64(6, 'UTC') COMMENT 'when feedhouse received the message',
    inserted_ts DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the row reached ClickHouse',
    site LowCardinality(String) DEFAULT '' COMMENT 'site named by the topic, where the template has one',
    feed LowCardinality(String) DEFAULT '' COMMENT 'configured feed that delivered the reading'
)
ENGINE = ReplacingMergeTree(inserted_ts)
PARTITION BY toDate(device_ts)
ORDER BY (device_id, sensor, device_ts, seq)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'sensor readings; one row per (device_id, sensor, device_ts, seq)';
