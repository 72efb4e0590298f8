// infp-sdk C++ client: subscribe to an agent's motion over ZeroMQ (header-only, C++17).
//
//   infp::Client client;
//   std::string error;
//   if (!client.connect("tcp://127.0.0.1:5555", "", &error)) { ... }
//   while (running) {
//     switch (client.poll(100)) {
//       case infp::Event::Motion:
//         face.set("jawOpen", client.blendshape("jawOpen"));
//         break;
//       default: break;
//     }
//   }
//
// Depends on cppzmq (zmq.hpp, libzmq) and msgpack-cxx (define MSGPACK_NO_BOOST). The wire
// protocol is docs/protocol.md; this client follows its rules: unknown keys are ignored, any
// msgpack number is accepted where a number is expected, a message with another major version
// is rejected.
//
// Robustness: decode_hello / decode_motion take untrusted bytes. They are noexcept, bound every
// size (msgpack unpack limits), check every type and length, and report failures as `false`
// plus a message; no exception leaves this header (the socket calls are wrapped too).

#ifndef INFP_CLIENT_HPP
#define INFP_CLIENT_HPP

#ifndef MSGPACK_NO_BOOST
#define MSGPACK_NO_BOOST
#endif

#include <msgpack.hpp>
#include <zmq.hpp>

#include <array>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace infp {

constexpr int kProtocolVersion = 1;
constexpr std::size_t kMaxNames = 1024;         // blendshape names in hello
constexpr std::size_t kMaxString = 64 * 1024;   // any string
constexpr std::size_t kMaxLatentBytes = 1 << 20;
constexpr std::size_t kMaxArray = 4096;         // any array
constexpr std::size_t kMaxMap = 256;            // keys in any map
constexpr std::size_t kMaxDepth = 64;          // nesting (unknown keys may hold nested values)

// topic "hello.<agent>": what is needed to read motion
struct Hello {
  int v = 0;
  std::string agent;
  std::string sdk;
  double fps = 0.0;
  std::vector<std::string> blendshapes;  // names of Motion::blendshapes, in order
  int latent_size = 0;
  std::string motion_space;
  std::vector<std::string> head;  // names of Motion::head values
  std::vector<std::string> gaze;  // names of Motion::gaze values
  std::map<std::string, std::string> conventions;  // units and axes, in words
  std::string control;            // control socket endpoint ("" if none)
  std::string audio;              // audio input endpoint ("" if none)
  std::string frame_format;       // "jpeg" or "rgb" when frame.<agent> is published, else ""
};

// Why a payload was rejected (the protocol's error codes).
enum class Error { None, Malformed, Invalid, UnsupportedVersion };

// topic "motion.<agent>": one frame
struct Motion {
  int v = 0;
  std::string agent;
  std::uint64_t seq = 0;  // +1 per message; a gap = messages dropped
  std::int64_t index = 0;  // frame number on the agent's clock (0 after a reset)
  double t = 0.0;          // media time of the frame's centre (s)
  std::vector<float> blendshapes;  // ARKit weights 0..1, names in Hello::blendshapes
  std::array<float, 6> head{};     // yaw, pitch, roll (rad), x, y, z (m)
  std::array<float, 4> gaze{};     // left yaw, left pitch, right yaw, right pitch (rad)
  float speaking = 0.0f;           // 0..1
  std::vector<float> latent;       // latent_size values
};

namespace detail {

inline void set_error(std::string* error, const char* what,
                      std::string_view key = {}) noexcept {
  if (error == nullptr) return;
  try {
    error->assign(what);
    if (!key.empty()) {
      error->append(": ");
      error->append(key.data(), key.size() > 200 ? 200 : key.size());
    }
  } catch (...) {  // out of memory while reporting: leave the message as it is
  }
}

inline bool as_double(const msgpack::object& o, double& out) {
  switch (o.type) {
    case msgpack::type::POSITIVE_INTEGER: out = static_cast<double>(o.via.u64); return true;
    case msgpack::type::NEGATIVE_INTEGER: out = static_cast<double>(o.via.i64); return true;
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: out = o.via.f64; return true;
    default: return false;
  }
}

inline bool as_float(const msgpack::object& o, float& out) {
  double d;
  if (!as_double(o, d)) return false;
  out = static_cast<float>(d);
  return true;
}

inline bool as_int64(const msgpack::object& o, std::int64_t& out) {
  if (o.type == msgpack::type::POSITIVE_INTEGER) {
    if (o.via.u64 > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return false;
    out = static_cast<std::int64_t>(o.via.u64);
    return true;
  }
  if (o.type == msgpack::type::NEGATIVE_INTEGER) {
    out = o.via.i64;
    return true;
  }
  return false;
}

inline bool as_uint64(const msgpack::object& o, std::uint64_t& out) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) return false;
  out = o.via.u64;
  return true;
}

inline bool as_string(const msgpack::object& o, std::string& out) {
  if (o.type != msgpack::type::STR || o.via.str.size > kMaxString) return false;
  out.assign(o.via.str.ptr, o.via.str.size);
  return true;
}

// A string, or nil (-> empty).
inline bool as_optional_string(const msgpack::object& o, std::string& out) {
  if (o.type == msgpack::type::NIL) {
    out.clear();
    return true;
  }
  return as_string(o, out);
}

inline bool as_string_map(const msgpack::object& o, std::map<std::string, std::string>& out) {
  if (o.type != msgpack::type::MAP || o.via.map.size > kMaxMap) return false;
  out.clear();
  for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
    std::string k, v;
    if (!as_string(o.via.map.ptr[i].key, k) || !as_string(o.via.map.ptr[i].val, v)) return false;
    out[std::move(k)] = std::move(v);
  }
  return true;
}

inline bool as_strings(const msgpack::object& o, std::vector<std::string>& out) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size > kMaxNames) return false;
  out.clear();
  out.reserve(o.via.array.size);
  for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
    std::string s;
    if (!as_string(o.via.array.ptr[i], s)) return false;
    out.push_back(std::move(s));
  }
  return true;
}

inline bool as_floats(const msgpack::object& o, std::vector<float>& out) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size > kMaxArray) return false;
  out.resize(o.via.array.size);
  for (std::uint32_t i = 0; i < o.via.array.size; ++i)
    if (!as_float(o.via.array.ptr[i], out[i])) return false;
  return true;
}

template <std::size_t N>
inline bool as_float_array(const msgpack::object& o, std::array<float, N>& out) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size != N) return false;
  for (std::size_t i = 0; i < N; ++i)
    if (!as_float(o.via.array.ptr[i], out[i])) return false;
  return true;
}

// float32 little-endian bytes -> floats (whole values only; any host byte order)
inline bool as_f32le(const msgpack::object& o, std::vector<float>& out) {
  if (o.type != msgpack::type::BIN || o.via.bin.size > kMaxLatentBytes || o.via.bin.size % 4)
    return false;
  const auto* p = reinterpret_cast<const unsigned char*>(o.via.bin.ptr);
  out.resize(o.via.bin.size / 4);
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::uint32_t bits = static_cast<std::uint32_t>(p[4 * i]) |
                         (static_cast<std::uint32_t>(p[4 * i + 1]) << 8) |
                         (static_cast<std::uint32_t>(p[4 * i + 2]) << 16) |
                         (static_cast<std::uint32_t>(p[4 * i + 3]) << 24);
    std::memcpy(&out[i], &bits, sizeof(float));
  }
  return true;
}

inline bool key_is(const msgpack::object& k, std::string_view name) {
  return k.type == msgpack::type::STR && k.via.str.size == name.size() &&
         std::memcmp(k.via.str.ptr, name.data(), name.size()) == 0;
}

inline std::string_view key_view(const msgpack::object& k) {
  if (k.type != msgpack::type::STR) return {};
  return std::string_view(k.via.str.ptr, k.via.str.size);
}

// Map keys must be strings (str or bin) at every level, as in the Python reference. The unpack
// limit bounds the nesting, so the recursion is bounded too.
inline bool keys_are_strings(const msgpack::object& o) noexcept {
  if (o.type == msgpack::type::MAP) {
    for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
      const msgpack::object_kv& kv = o.via.map.ptr[i];
      if (kv.key.type != msgpack::type::STR && kv.key.type != msgpack::type::BIN) return false;
      if (!keys_are_strings(kv.val)) return false;
    }
  } else if (o.type == msgpack::type::ARRAY) {
    for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
      if (!keys_are_strings(o.via.array.ptr[i])) return false;
    }
  }
  return true;
}

// Unpack a payload into `handle`; false (and a message) on anything malformed or too big.
inline bool unpack_map(const void* data, std::size_t size, msgpack::object_handle& handle,
                       std::string* error) noexcept {
  if (data == nullptr && size != 0) {
    set_error(error, "null data");
    return false;
  }
  try {
    msgpack::unpack_limit limit(kMaxArray, kMaxMap, kMaxString, kMaxLatentBytes, 0, kMaxDepth);
    std::size_t offset = 0;
    handle = msgpack::unpack(static_cast<const char*>(data), size, offset, nullptr, nullptr,
                             limit);
    if (offset != size) {
      set_error(error, "trailing bytes after the payload");
      return false;
    }
  } catch (const std::exception& e) {
    set_error(error, "not a valid msgpack payload", e.what());
    return false;
  } catch (...) {
    set_error(error, "not a valid msgpack payload");
    return false;
  }
  if (handle.get().type != msgpack::type::MAP) {
    set_error(error, "payload is not a map");
    return false;
  }
  if (!keys_are_strings(handle.get())) {
    set_error(error, "payload has a map key that is not a string");
    return false;
  }
  return true;
}

inline void set_code(Error* code, Error value) noexcept {
  if (code != nullptr) *code = value;
}

inline bool check_version(const msgpack::object& o, int& v, std::string* error, Error* code) {
  std::int64_t value;
  if (!as_int64(o, value)) {
    set_error(error, "v is not an integer");
    set_code(code, Error::Invalid);
    return false;
  }
  if (value != kProtocolVersion) {
    set_error(error, "unsupported protocol version");
    set_code(code, Error::UnsupportedVersion);
    return false;
  }
  v = static_cast<int>(value);
  return true;
}

}  // namespace detail

// Decode a hello payload. Unknown keys are ignored. Never throws. On failure `error` gets a
// message and `code` the kind.
inline bool decode_hello(const void* data, std::size_t size, Hello& out,
                         std::string* error = nullptr, Error* code = nullptr) noexcept {
  detail::set_code(code, Error::Malformed);
  try {
    msgpack::object_handle handle;
    if (!detail::unpack_map(data, size, handle, error)) return false;
    detail::set_code(code, Error::Invalid);
    const msgpack::object_map& map = handle.get().via.map;
    Hello h;
    h.v = kProtocolVersion;  // absent v = current version
    bool have_names = false, have_fps = false, have_latent = false;
    for (std::uint32_t i = 0; i < map.size; ++i) {
      const msgpack::object& k = map.ptr[i].key;
      const msgpack::object& val = map.ptr[i].val;
      bool ok = true;
      if (detail::key_is(k, "v")) {
        if (!detail::check_version(val, h.v, error, code)) return false;
      }
      else if (detail::key_is(k, "agent")) ok = detail::as_string(val, h.agent);
      else if (detail::key_is(k, "sdk")) ok = detail::as_string(val, h.sdk);
      else if (detail::key_is(k, "fps")) ok = have_fps = detail::as_double(val, h.fps) && h.fps > 0 && std::isfinite(h.fps);
      else if (detail::key_is(k, "blendshapes")) ok = have_names = detail::as_strings(val, h.blendshapes);
      else if (detail::key_is(k, "latent_size")) {
        std::int64_t n;
        ok = have_latent = detail::as_int64(val, n) && n >= 0 && n <= static_cast<std::int64_t>(kMaxLatentBytes / 4);
        if (ok) h.latent_size = static_cast<int>(n);
      }
      else if (detail::key_is(k, "motion_space")) ok = detail::as_string(val, h.motion_space);
      else if (detail::key_is(k, "head")) ok = detail::as_strings(val, h.head);
      else if (detail::key_is(k, "gaze")) ok = detail::as_strings(val, h.gaze);
      else if (detail::key_is(k, "control")) ok = detail::as_optional_string(val, h.control);
      else if (detail::key_is(k, "audio")) ok = detail::as_optional_string(val, h.audio);
      else if (detail::key_is(k, "conventions")) ok = detail::as_string_map(val, h.conventions);
      else if (detail::key_is(k, "frame_format")) ok = detail::as_optional_string(val, h.frame_format);
      if (!ok) {
        detail::set_error(error, "bad value for key", detail::key_view(k));
        return false;
      }
    }
    if (!have_names || !have_fps || !have_latent) {
      detail::set_error(error, "hello lacks blendshapes, fps or latent_size");
      return false;
    }
    out = std::move(h);
    detail::set_code(code, Error::None);
    return true;
  } catch (...) {  // std::bad_alloc and the like: report, never throw
    detail::set_error(error, "out of memory or internal error while decoding hello");
    return false;
  }
}

// Decode a motion payload. Unknown keys are ignored. Never throws. On failure `error` gets a
// message and `code` the kind. With a hello at hand, also call check_motion.
inline bool decode_motion(const void* data, std::size_t size, Motion& out,
                          std::string* error = nullptr, Error* code = nullptr) noexcept {
  detail::set_code(code, Error::Malformed);
  try {
    msgpack::object_handle handle;
    if (!detail::unpack_map(data, size, handle, error)) return false;
    detail::set_code(code, Error::Invalid);
    const msgpack::object_map& map = handle.get().via.map;
    Motion m;
    m.v = kProtocolVersion;
    unsigned seen = 0;  // bit per required key
    for (std::uint32_t i = 0; i < map.size; ++i) {
      const msgpack::object& k = map.ptr[i].key;
      const msgpack::object& val = map.ptr[i].val;
      bool ok = true;
      if (detail::key_is(k, "v")) {
        if (!detail::check_version(val, m.v, error, code)) return false;
      }
      else if (detail::key_is(k, "agent")) ok = detail::as_string(val, m.agent);
      else if (detail::key_is(k, "seq")) { ok = detail::as_uint64(val, m.seq); seen |= 1u; }
      else if (detail::key_is(k, "index")) { ok = detail::as_int64(val, m.index); seen |= 2u; }
      else if (detail::key_is(k, "t")) { ok = detail::as_double(val, m.t) && std::isfinite(m.t); seen |= 4u; }
      else if (detail::key_is(k, "blendshapes")) { ok = detail::as_floats(val, m.blendshapes); seen |= 8u; }
      else if (detail::key_is(k, "head")) { ok = detail::as_float_array(val, m.head); seen |= 16u; }
      else if (detail::key_is(k, "gaze")) { ok = detail::as_float_array(val, m.gaze); seen |= 32u; }
      else if (detail::key_is(k, "speaking")) { ok = detail::as_float(val, m.speaking); seen |= 64u; }
      else if (detail::key_is(k, "latent")) { ok = detail::as_f32le(val, m.latent); seen |= 128u; }
      if (!ok) {
        detail::set_error(error, "bad value for key", detail::key_view(k));
        return false;
      }
    }
    if (seen != 255u) {
      detail::set_error(error, "motion lacks a required key (seq, index, t, blendshapes, head, gaze, speaking, latent)");
      return false;
    }
    out = std::move(m);
    detail::set_code(code, Error::None);
    return true;
  } catch (...) {
    detail::set_error(error, "out of memory or internal error while decoding motion");
    return false;
  }
}

// The checks a motion message must pass against its publisher's hello: as many blendshapes as
// hello has names, latent_size latent values. Never throws.
inline bool check_motion(const Motion& m, const Hello& h, std::string* error = nullptr,
                         Error* code = nullptr) noexcept {
  if (m.blendshapes.size() != h.blendshapes.size()) {
    detail::set_error(error, "blendshape count differs from hello.blendshapes");
    detail::set_code(code, Error::Invalid);
    return false;
  }
  if (m.latent.size() != static_cast<std::size_t>(h.latent_size)) {
    detail::set_error(error, "latent size differs from hello.latent_size");
    detail::set_code(code, Error::Invalid);
    return false;
  }
  detail::set_code(code, Error::None);
  return true;
}

enum class Event { None, Hello, Motion, Error };

// A SUB socket on one publisher; receive with poll() from one thread (a game's network thread),
// hand values to the main thread yourself.
class Client {
 public:
  Client() = default;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Subscribe to hello and motion of `agent` ("" = every agent). Never throws.
  bool connect(const std::string& endpoint, const std::string& agent = "",
               std::string* error = nullptr) noexcept {
    try {
      socket_ = zmq::socket_t(context_, zmq::socket_type::sub);
      socket_.set(zmq::sockopt::linger, 0);
      std::string suffix = agent.empty() ? std::string() : "." + agent;
      socket_.set(zmq::sockopt::subscribe, "hello" + suffix);
      socket_.set(zmq::sockopt::subscribe, "motion" + suffix);
      socket_.connect(endpoint);
      return true;
    } catch (const std::exception& e) {
      detail::set_error(error, "cannot connect", e.what());
      return false;
    } catch (...) {
      detail::set_error(error, "cannot connect");
      return false;
    }
  }

  // Wait up to timeout_ms for one message and decode it. Never throws.
  Event poll(int timeout_ms) noexcept {
    try {
      zmq::pollitem_t item{static_cast<void*>(socket_), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) <= 0) return Event::None;
      zmq::message_t topic, payload;
      if (!socket_.recv(topic, zmq::recv_flags::dontwait)) return Event::None;
      bool two_parts = topic.more() && socket_.recv(payload, zmq::recv_flags::dontwait);
      while (socket_.get(zmq::sockopt::rcvmore)) {  // discard extra frames
        zmq::message_t extra;
        if (!socket_.recv(extra, zmq::recv_flags::dontwait)) break;
        two_parts = false;
      }
      if (!two_parts) return fail("expected [topic, payload]");
      std::string_view t(static_cast<const char*>(topic.data()), topic.size());
      if (t.substr(0, 6) == "hello.") {
        Hello h;
        if (!decode_hello(payload.data(), payload.size(), h, &last_error_)) return fail(nullptr);
        hello_ = std::move(h);
        return Event::Hello;
      }
      if (t.substr(0, 7) == "motion.") {
        Motion m;
        if (!decode_motion(payload.data(), payload.size(), m, &last_error_)) return fail(nullptr);
        // Checked against the hello of the same agent (messages of other agents can only be
        // checked once their hello came; with one hello per client, the last one).
        if (hello_ && hello_->agent == m.agent && !check_motion(m, *hello_, &last_error_))
          return fail(nullptr);
        if (have_motion_ && m.agent == motion_.agent && m.seq > motion_.seq + 1)
          dropped_ += m.seq - motion_.seq - 1;
        motion_ = std::move(m);
        have_motion_ = true;
        return Event::Motion;
      }
      return Event::None;  // a topic we do not read (e.g. frame.*)
    } catch (const std::exception& e) {
      detail::set_error(&last_error_, "socket error", e.what());
      return fail(nullptr);
    } catch (...) {
      return fail("socket error");
    }
  }

  // The last hello (nullptr before the first).
  const Hello* hello() const noexcept { return hello_ ? &*hello_ : nullptr; }
  // The last motion message (valid after the first Event::Motion).
  const Motion& motion() const noexcept { return motion_; }
  bool has_motion() const noexcept { return have_motion_; }

  // Position of a blendshape in Motion::blendshapes by name (case-insensitive, from hello);
  // -1 if unknown or no hello yet.
  int index_of(std::string_view name) const noexcept {
    if (!hello_) return -1;
    for (std::size_t i = 0; i < hello_->blendshapes.size(); ++i) {
      const std::string& n = hello_->blendshapes[i];
      if (n.size() != name.size()) continue;
      bool same = true;
      for (std::size_t j = 0; j < n.size() && same; ++j)
        same = std::tolower(static_cast<unsigned char>(n[j])) ==
               std::tolower(static_cast<unsigned char>(name[j]));
      if (same) return static_cast<int>(i);
    }
    return -1;
  }

  // The weight of a blendshape in the last motion, by name; NaN if unknown.
  float blendshape(std::string_view name) const noexcept {
    int i = index_of(name);
    if (i < 0 || !have_motion_ || static_cast<std::size_t>(i) >= motion_.blendshapes.size())
      return std::numeric_limits<float>::quiet_NaN();
    return motion_.blendshapes[static_cast<std::size_t>(i)];
  }

  std::uint64_t dropped() const noexcept { return dropped_; }  // motion lost (seq gaps)
  std::uint64_t errors() const noexcept { return errors_; }    // undecodable messages
  const std::string& last_error() const noexcept { return last_error_; }

 private:
  Event fail(const char* what) noexcept {
    ++errors_;
    if (what != nullptr) detail::set_error(&last_error_, what);
    return Event::Error;
  }

  zmq::context_t context_{1};
  zmq::socket_t socket_;
  std::optional<Hello> hello_;
  Motion motion_;
  bool have_motion_ = false;
  std::uint64_t dropped_ = 0;
  std::uint64_t errors_ = 0;
  std::string last_error_;
};

}  // namespace infp

#endif  // INFP_CLIENT_HPP
