// The cloud link's options from the agent's config: one mapping for the running link and for
// `pms-agent check`'s broker probe, so both use the same URL, files and identity.
#pragma once

#include "psa/agent/config.h"
#include "psa/cloudlink/cloud_link.h"

namespace psa::agent {

cloudlink::CloudLinkOptions linkOptions(const Config& cfg);

}  // namespace psa::agent
