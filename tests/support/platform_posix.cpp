#include "test_support.h"

namespace psa::test {

bool runningUnderWine() { return false; }

}  // namespace psa::test
