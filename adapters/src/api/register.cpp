#include "psa/adapters/source.h"

namespace psa::adapters {

// Placeholder until this adapter family lands; it registers nothing.
void registerApiSources(SourceRegistry& /*registry*/) {}

}  // namespace psa::adapters
