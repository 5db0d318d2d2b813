// Runs a blocking call (a DNS lookup) on a detached thread that owns its state, and waits for it
// at most `timeout`: a hung resolver cannot hold the caller, and a late answer is dropped.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "psa/store/fatal.h"

namespace psa::os {

template <class T>
std::optional<T> callWithDeadline(std::function<T()> fn, std::chrono::milliseconds timeout) {
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<T> result;
  };
  auto st = std::make_shared<State>();
  std::thread([st, fn = std::move(fn)] {
    guardInvariant("call_with_deadline", [&] {
      T value = fn();
      std::lock_guard lock(st->mu);
      st->result = std::move(value);
      st->cv.notify_all();
    });
  }).detach();
  std::unique_lock lock(st->mu);
  if (!st->cv.wait_for(lock, timeout, [&] { return st->result.has_value(); })) {
    return std::nullopt;
  }
  return std::move(st->result);
}

}  // namespace psa::os
