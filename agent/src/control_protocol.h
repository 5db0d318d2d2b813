// Moved to the public header (the fuzz target and other clients use it).
#pragma once

#include "psa/agent/control_protocol.h"
