// The signals that stop or reload the service process. One implementation per OS:
// process_signals_posix.cpp (SIGTERM and SIGINT stop, SIGHUP reloads the config) and
// process_signals_win.cpp (SIGINT and SIGBREAK stop; Windows has no reload signal: the SCM
// host and `pms-agent config reload` cover that).
#pragma once

#include <boost/asio/signal_set.hpp>

namespace psa::agent {

enum class SignalAction { stop, reload };

/// Adds every signal the service reacts to.
void addServiceSignals(boost::asio::signal_set& signals);

/// What a signal from that set means.
SignalAction signalAction(int signal);

/// Its name for the log ("SIGTERM").
const char* signalName(int signal);

}  // namespace psa::agent
