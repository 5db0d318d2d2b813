#include "http/request_reader.h"

#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>

namespace psa::agent::http {

namespace bhttp = boost::beast::http;

void applyLimits(RequestParser& parser) {
  parser.header_limit(kHeaderLimit);
  parser.body_limit(kBodyLimit);
}

Request toRequest(const BeastRequest& req) {
  Request request;
  request.method = std::string(req.method_string());
  request.target = std::string(req.target());
  request.host = std::string(req[bhttp::field::host]);
  request.authorization = std::string(req[bhttp::field::authorization]);
  return request;
}

int parseRefusal(const boost::system::error_code& ec) {
  if (!ec || ec.category() != bhttp::make_error_code(bhttp::error::bad_target).category() ||
      ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message) {
    return 0;
  }
  if (ec == bhttp::error::header_limit) {
    return 431;
  }
  if (ec == bhttp::error::body_limit) {
    return 413;
  }
  return 400;
}

}  // namespace psa::agent::http
