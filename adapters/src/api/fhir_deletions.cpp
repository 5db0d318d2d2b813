#include "fhir_deletions.h"

#include "psa/store/json.h"

namespace psa::adapters::api {

Status listFhirIds(const GetBundlePage& get_page, const std::string& base, const std::string& type,
                   int64_t page_size, const Params& extra, const std::function<bool()>& stopped,
                   std::set<std::string>& ids) {
  // _elements=id: servers that honour it send ids only (the listing is all we need).
  Params params{{"_elements", "id"}, {"_count", std::to_string(page_size)}};
  for (const auto& p : extra) {
    params.push_back(p);
  }
  std::string url = withQuery(base + "/" + type, params);
  while (!url.empty()) {
    if (stopped()) {
      return Error(Errc::closed, "stopped");
    }
    auto page = std::make_shared<FhirPage>();
    auto resp = get_page(url, "list " + type + " ids", page);
    if (!resp) {
      return std::move(resp).error();
    }
    for (const auto& item : page->items) {
      if (!item.deleted && item.ref.type == type) {
        ids.insert(item.ref.id);
      }
    }
    url = page->next_url;
  }
  return {};
}

std::string fhirDeletionEntry(const std::string& type, const std::string& id) {
  json::Value req = json::Value::object();
  req.set("method", json::Value::string("DELETE"));
  req.set("url", json::Value::string(type + "/" + id));
  json::Value entry = json::Value::object();
  entry.set("request", std::move(req));
  return json::serialize(entry);
}

}  // namespace psa::adapters::api
