#include <csignal>

#include "process_signals.h"

namespace psa::agent {

void addServiceSignals(boost::asio::signal_set& signals) {
  signals.add(SIGTERM);
  signals.add(SIGINT);
  signals.add(SIGHUP);
}

SignalAction signalAction(int signal) {
  return signal == SIGHUP ? SignalAction::reload : SignalAction::stop;
}

const char* signalName(int signal) {
  switch (signal) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "signal";
  }
}

}  // namespace psa::agent
