// Names of the shared parse errors (include/kagami/abi/parse.h): the
// "reason" label of every module's malformed-packet counters, so the same
// parser failure reads the same in every module's series and JSON.
#pragma once

#include <linux/types.h>

#include "kagami/abi/parse.h"

namespace kagami::core {

// "vlan_too_many_tags", ...; "unknown" outside the enum.
const char* parse_error_name(int err);

}  // namespace kagami::core
