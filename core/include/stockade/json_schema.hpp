// json_schema.hpp -- the subset of JSON Schema (2020-12) our schemas use, with errors that name
// the JSON path.
//
// Debian 12 ships no JSON Schema validator for nlohmann::json, and a fencing config must be
// refused with a precise reason before anything runs.  Supported keywords: type, enum, const,
// required, properties, additionalProperties, propertyNames, minProperties, items, minItems,
// maxItems, minimum, maximum, exclusiveMinimum, exclusiveMaximum, minLength, maxLength, pattern,
// oneOf, anyOf, $ref to "#/$defs/...".  Unknown keywords are ignored (annotations).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stockade/result.hpp"

namespace stockade {

// Validates `instance` against `schema`: every problem found (objects in key order), each an Error
// with its JSON pointer (`pointer`, the root is "/"), the bare `problem`, and the message
// "<pointer>: <problem>", e.g. "/devices/bmc1/timeout: must be > 0".
std::vector<Error> validate_json_all(const nlohmann::json &schema, const nlohmann::json &instance);
// The first of them, if any.
Status validate_json(const nlohmann::json &schema, const nlohmann::json &instance);

} // namespace stockade
