"""Why a message, or a record in it, was rejected.

The value is the last level of the dead-letter topic
(``agrimatch/v1/_dead/{reason}``), so it is part of the contract.
"""

from enum import StrEnum


class Reason(StrEnum):
    BAD_TOPIC = "bad_topic"
    TOO_LARGE = "too_large"
    NOT_JSON = "not_json"  # not UTF-8, or not JSON
    NOT_SENML = "not_senml"  # JSON, but not a SenML pack
    DEVICE_MISMATCH = "device_mismatch"  # base name names another device than the topic
    UNKNOWN_DEVICE = "unknown_device"  # the registry has no device of the topic's id
    WRONG_PLACE = "wrong_place"  # the device is registered on another farm or field
    UNKNOWN_SENSOR = "unknown_sensor"
    WRONG_UNIT = "wrong_unit"
    WRONG_TYPE = "wrong_type"
    NOT_FINITE = "not_finite"  # NaN or +-Infinity
    OUT_OF_RANGE = "out_of_range"  # outside the sensor's physical range
    TIME_IN_FUTURE = "time_in_future"
    TIME_TOO_OLD = "time_too_old"
    DUPLICATE_RECORD = "duplicate_record"  # same sensor and sample time as an earlier record
    STORE_REJECTED = "store_rejected"  # the store refused the point for good (HTTP 4xx)
    # Ingest failed on this message (a bug): kept with its digest so it can be replayed
    # once fixed, instead of stopping the writer on every redelivery (a poison message).
    INTERNAL_ERROR = "internal_error"
