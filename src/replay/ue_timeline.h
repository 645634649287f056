// `kagami replay FILE --ue-timeline`: the per-UE forensics timeline of a
// replay report as JSON lines, one per UE event, in capture order, answering
// "what happened to this UE at 10:32". Built from the n2 module's UE records
// (n2.ue_records[].timeline: one entry per NGAP message that names a UE);
// the same lines stream live from `kagami events --module n2`. Schema in
// docs/n2.md ("Forensics: the UE timeline").
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace kagami::replay {

// One line per UE event, sorted by capture time (then UE): {"time" (RFC
// 3339, capture clock), "ts_ns", "ue": {association, ran_ue_ngap_id,
// amf_ue_ngap_id, subscriber (hashed)}, "ids" (the UE NGAP IDs the message
// itself carried), "procedure", "pdu_type",
// "message" (the NAS message, or "ciphered"), "outcome", "duration_ms",
// "cause", "nas" (every NAS-PDU), "ul_tunnels"/"dl_tunnels"}. Keys appear
// only when known. An Error when the report has no n2 section.
Result<std::vector<nlohmann::json>> ue_timeline(const nlohmann::json& report);

}  // namespace kagami::replay
