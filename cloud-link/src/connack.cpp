#include "psa/cloudlink/connack.h"

#include <cstdint>
#include <cstdio>
#include <set>

namespace psa::cloudlink {
namespace {

std::string hexId(uint8_t id) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", static_cast<unsigned>(id));
  return buf;
}

Error malformed(const std::string& what) {
  return Error(Errc::invalid_argument, "malformed CONNACK: " + what);
}

// A cursor over the packet's bytes; every read checks the bounds.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : b_(bytes) {}
  size_t left() const { return b_.size() - at_; }
  bool byte(uint8_t& v) {
    if (left() < 1) {
      return false;
    }
    v = static_cast<uint8_t>(b_[at_++]);
    return true;
  }
  bool u16(uint16_t& v) {
    uint8_t hi = 0;
    uint8_t lo = 0;
    if (left() < 2) {
      return false;
    }
    byte(hi);
    byte(lo);
    v = static_cast<uint16_t>(hi << 8 | lo);
    return true;
  }
  bool u32(uint32_t& v) {
    uint16_t hi = 0;
    uint16_t lo = 0;
    if (left() < 4) {
      return false;
    }
    u16(hi);
    u16(lo);
    v = static_cast<uint32_t>(hi) << 16 | lo;
    return true;
  }
  bool varint(uint32_t& v) {
    v = 0;
    for (int i = 0; i < 4; ++i) {
      uint8_t b = 0;
      if (!byte(b)) {
        return false;
      }
      v |= static_cast<uint32_t>(b & 0x7f) << (7 * i);
      if ((b & 0x80) == 0) {
        return true;
      }
    }
    return false;  // a fifth byte: not an MQTT variable byte integer
  }
  bool bytes(std::string& v) {
    uint16_t n = 0;
    if (!u16(n) || left() < n) {
      return false;
    }
    v.assign(b_.substr(at_, n));
    at_ += n;
    return true;
  }

 private:
  std::string_view b_;
  size_t at_ = 0;
};

}  // namespace

Result<size_t> mqttPacketLength(std::string_view prefix) {
  uint32_t remaining = 0;
  for (size_t i = 1; i < 5; ++i) {
    if (i >= prefix.size()) {
      return size_t{0};
    }
    const auto b = static_cast<uint8_t>(prefix[i]);
    remaining |= static_cast<uint32_t>(b & 0x7f) << (7 * (i - 1));
    if ((b & 0x80) == 0) {
      return i + 1 + remaining;
    }
  }
  return malformed("remaining length longer than 4 bytes");
}

Result<Connack> parseConnack(std::string_view packet) {
  Reader r(packet);
  uint8_t type = 0;
  uint32_t remaining = 0;
  if (!r.byte(type) || type != 0x20) {
    return malformed("not a CONNACK packet");
  }
  if (!r.varint(remaining) || remaining != r.left()) {
    return malformed("remaining length does not match the packet");
  }
  Connack c;
  c.limits.announced = true;
  uint8_t flags = 0;
  uint8_t code = 0;
  if (!r.byte(flags) || !r.byte(code)) {
    return malformed("too short");
  }
  if ((flags & 0xfe) != 0) {
    return malformed("reserved acknowledge flags set");
  }
  c.session_present = (flags & 1) != 0;
  c.reason_code = code;
  if (r.left() == 0) {
    return c;  // MQTT 5 allows leaving out the property length
  }
  uint32_t props_len = 0;
  if (!r.varint(props_len) || props_len != r.left()) {
    return malformed("property length does not match the packet");
  }
  std::set<uint8_t> seen;
  while (r.left() > 0) {
    uint8_t id = 0;
    r.byte(id);
    if (id != 0x26 && !seen.insert(id).second) {
      return malformed("property " + hexId(id) + " given twice");
    }
    uint8_t b = 0;
    uint16_t s = 0;
    uint32_t l = 0;
    std::string text;
    bool ok = true;
    switch (id) {
      case 0x11:  // Session Expiry Interval
        ok = r.u32(l);
        c.limits.session_expiry_s = l;
        break;
      case 0x21:  // Receive Maximum
        ok = r.u16(s) && s != 0;
        c.limits.receive_maximum = s;
        break;
      case 0x24:  // Maximum QoS
        ok = r.byte(b) && b <= 1;
        c.limits.maximum_qos = b;
        break;
      case 0x25:  // Retain Available
        ok = r.byte(b) && b <= 1;
        c.limits.retain_available = b == 1;
        break;
      case 0x27:  // Maximum Packet Size
        ok = r.u32(l) && l != 0;
        c.limits.maximum_packet_size = l;
        break;
      case 0x12:  // Assigned Client Identifier
        ok = r.bytes(c.limits.assigned_client_id);
        break;
      case 0x22:  // Topic Alias Maximum
        ok = r.u16(s);
        c.limits.topic_alias_maximum = s;
        break;
      case 0x1F:  // Reason String
        ok = r.bytes(c.reason_string);
        break;
      case 0x26: {  // User Property: a name and a value
        std::string value;
        ok = r.bytes(text) && r.bytes(value);
        break;
      }
      case 0x28:  // Wildcard Subscription Available
      case 0x29:  // Subscription Identifiers Available
      case 0x2A:  // Shared Subscription Available
        ok = r.byte(b) && b <= 1;
        break;
      case 0x13:  // Server Keep Alive
        ok = r.u16(s);
        c.limits.server_keep_alive_s = s;
        break;
      case 0x1A:  // Response Information
      case 0x15:  // Authentication Method
      case 0x16:  // Authentication Data (binary: the same length-prefixed shape)
        ok = r.bytes(text);
        break;
      case 0x1C:  // Server Reference
        ok = r.bytes(c.server_reference);
        break;
      default:
        return malformed("property " + hexId(id) + " has no place in a CONNACK");
    }
    if (!ok) {
      return malformed("property " + hexId(id) + " is cut short or out of range");
    }
  }
  return c;
}

}  // namespace psa::cloudlink
