// A small blocking MLLP client (optionally over TLS): `pms-agent hl7 send`, `pms-agent check`,
// tests and benchmarks. Every operation has a deadline; nothing blocks forever.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "psa/store/result.h"

namespace psa::adapters::hl7 {

struct MllpClientOptions {
  std::string host;  ///< name or IP literal (IPv6 without brackets)
  uint16_t port = 0;
  bool tls = false;
  /// CA that signs the server's certificate (PEM); empty: the system's default trust store.
  std::filesystem::path ca_file;
  /// Client certificate and key (PEM) for servers that require one; both or neither.
  std::filesystem::path cert_file;
  std::filesystem::path key_file;
  /// Name the server certificate must carry (DNS name or IP); default `host`.
  std::string server_name;
  /// Deadline of connect (with the TLS handshake) and of each send/receive.
  std::chrono::milliseconds timeout{10000};
  /// Largest acknowledgement frame accepted.
  size_t max_frame_bytes = 16u << 20;
};

/// One MLLP connection. Not thread-safe: use from one thread.
class MllpClient {
 public:
  /// Resolves, connects and (with tls) handshakes and verifies the server certificate.
  /// Errors: Errc::invalid_argument (options), Errc::unavailable (resolve/connect failed),
  /// Errc::timeout, Errc::unauthorized (TLS handshake or verification failed; the message
  /// says why), Errc::io (certificate files unreadable).
  static Result<std::unique_ptr<MllpClient>> connect(const MllpClientOptions& options);

  ~MllpClient();
  MllpClient(const MllpClient&) = delete;
  MllpClient& operator=(const MllpClient&) = delete;

  /// Frames `message` (0x0B ... 0x1C 0x0D) and writes it. Errors: Errc::timeout, Errc::closed
  /// (peer closed), Errc::io.
  Status send(std::string_view message);
  /// Writes `bytes` as they are, without framing (tests of framing faults).
  Status sendRaw(std::string_view bytes);
  /// Closes the sending direction (TCP half-close, also under TLS: no close_notify); receiving
  /// still works.
  Status shutdownSend();
  /// The next frame from the server (an ACK), without framing. Errors: Errc::timeout,
  /// Errc::closed (the server closed the connection; no partial frame is returned), Errc::limit
  /// (frame larger than max_frame_bytes), Errc::io.
  Result<std::string> receive();
  /// send() then receive().
  Result<std::string> exchange(std::string_view message);
  /// Closes the connection (no I/O is waited for).
  void close();

  /// "127.0.0.1:2575" of the peer.
  const std::string& peer() const;

 private:
  struct Impl;
  explicit MllpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

using MllpClientPtr = std::unique_ptr<MllpClient>;

/// The fields of an acknowledgement a sender cares about.
struct AckSummary {
  std::string code;        ///< MSA-1: AA, AE, AR, CA, CE, CR ("" if no MSA)
  std::string control_id;  ///< MSA-2 (the acknowledged message's MSH-10)
  std::string text;        ///< MSA-3, decoded
  /// One line per ERR segment: "HL7 101 (Required field missing) at MSH-10 severity E".
  std::vector<std::string> errors;
  /// AA or CA.
  bool accepted() const { return code == "AA" || code == "CA"; }
};

/// Reads an ACK message. Errors: Errc::invalid_input if it does not parse or has no MSA.
Result<AckSummary> summarizeAck(std::string_view ack);

}  // namespace psa::adapters::hl7
