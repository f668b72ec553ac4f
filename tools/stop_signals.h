// StopSignals: how a long-running command (follow, publish, attach --hold)
// stops at SIGINT or SIGTERM. The signals are blocked in the constructing
// thread and every thread it starts from then on (a library's verification
// or decoding workers), and taken only by wait(): a command sleeps in
// wait(), so a signal ends the sleep at once, with no handler and no race
// between checking a flag and sleeping. They stay blocked: the command is
// the last thing the process does.
//
// Construct it first thing in the command, before anything starts a thread
// that would otherwise take the signal with its default action (exit,
// skipping the clean-up the command does when stopped).
#ifndef IQDB_PERSIST_TOOLS_STOP_SIGNALS_H_
#define IQDB_PERSIST_TOOLS_STOP_SIGNALS_H_

#include <signal.h>

#include <chrono>

namespace iqdb::tools {

class StopSignals {
 public:
  StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // Whether a stop signal arrived before `timeout` passed.
  bool wait(std::chrono::steady_clock::duration timeout) const;

 private:
  sigset_t set_{};
};

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_STOP_SIGNALS_H_
