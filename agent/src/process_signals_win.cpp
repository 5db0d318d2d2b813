#include <csignal>

#include "process_signals.h"

namespace psa::agent {

void addServiceSignals(boost::asio::signal_set& signals) {
  signals.add(SIGINT);    // Ctrl+C
  signals.add(SIGBREAK);  // Ctrl+Break, console closed
  signals.add(SIGTERM);
}

SignalAction signalAction(int) { return SignalAction::stop; }

const char* signalName(int signal) {
  switch (signal) {
    case SIGINT:
      return "SIGINT";
    case SIGBREAK:
      return "SIGBREAK";
    case SIGTERM:
      return "SIGTERM";
    default:
      return "signal";
  }
}

}  // namespace psa::agent
