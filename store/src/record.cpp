#include "psa/store/record.h"

#include <future>

#include "psa/store/record_sink.h"

namespace psa::store {

std::string_view kindName(Kind kind) {
  switch (kind) {
    case Kind::patient: return "patient";
    case Kind::appointment: return "appointment";
    case Kind::clinical: return "clinical";
    case Kind::billing: return "billing";
    case Kind::provider: return "provider";
    case Kind::inventory: return "inventory";
    case Kind::other: return "other";
  }
  return "other";
}

std::optional<Kind> parseKind(std::string_view name) {
  for (Kind k : kAllKinds) {
    if (kindName(k) == name) {
      return k;
    }
  }
  return std::nullopt;
}

Result<AppendResult> RecordSink::appendSync(AppendBatch batch) {
  std::promise<Result<AppendResult>> promise;
  auto future = promise.get_future();
  append(std::move(batch), [&promise](Result<AppendResult> r) { promise.set_value(std::move(r)); });
  return future.get();
}

Result<std::map<std::string, std::string>> RecordSink::watermarks(const std::string& /*scope*/) {
  return Error(Errc::invalid_argument, "listing watermarks is not supported by this sink");
}

}  // namespace psa::store
