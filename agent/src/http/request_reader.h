// From Beast's parse of one request to what admit() and the handlers see: the limits the
// parser runs with, the fields we keep, and the status that answers bytes that do not parse.
// Shared by the server and tests/fuzz/fuzz_http_request.cpp, so the fuzzer runs the server's
// own limits and mapping.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>

#include "http/request_gate.h"

namespace psa::agent::http {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;
using BeastRequest = boost::beast::http::request<boost::beast::http::string_body>;

constexpr size_t kHeaderLimit = 8 * 1024;  // a browser's GET is well under 2 KiB
constexpr size_t kBodyLimit = 1024;        // GET and HEAD carry no body

/// Sets the header and body limits on a fresh parser.
void applyLimits(RequestParser& parser);

/// The fields the gate and the handlers read.
Request toRequest(const BeastRequest& request);

/// The status that answers bytes Beast refused (431 headers too large, 413 body too large,
/// 400 anything else it cannot parse), or 0 for an error that is not the request's fault
/// (timeout, reset, TLS): then nothing is answered.
int parseRefusal(const boost::system::error_code& ec);

}  // namespace psa::agent::http
