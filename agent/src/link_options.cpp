#include "link_options.h"

namespace psa::agent {

cloudlink::CloudLinkOptions linkOptions(const Config& cfg) {
  const CloudSettings& c = cfg.cloud;
  cloudlink::CloudLinkOptions o;
  if (c.urls.empty()) {
    o.url = c.url;
  } else {
    o.urls = c.urls;
  }
  o.ca_file = c.ca_file;
  o.cert_file = c.cert_file;
  o.key_file = c.key_file;
  o.username = c.username;
  o.password_file = c.password_file;
  o.username_from_certificate = c.username_from_certificate;
  o.tenant = cfg.tenant;
  o.agent_id = cfg.agent_id;
  o.max_inflight = static_cast<size_t>(c.max_inflight);
  o.confirm = cloudlink::parseConfirm(c.confirm).value_or(cloudlink::Confirm::broker);
  o.keepalive = std::chrono::seconds(c.keepalive_s);
  o.session_expiry = std::chrono::seconds(c.session_expiry_s);
  o.receipt_timeout = std::chrono::seconds(c.receipt_timeout_s);
  o.puback_timeout = std::chrono::seconds(c.puback_timeout_s);
  // The link publishes P/status on connect; the remote manager publishes it on state changes
  // and every cloud.status_interval_s (which the cloud may change at run time).
  o.status_interval = std::chrono::seconds(0);
  return o;
}

}  // namespace psa::agent
