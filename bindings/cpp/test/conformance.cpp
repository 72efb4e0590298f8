// Conformance check of the C++ client's decoders against tests/vectors/: decodes each vector and
// prints what it made of it as one JSON line, for tests/test_bindings_cpp.py to compare with
// tests/vectors/manifest.json. Built with -fsanitize=address,undefined by that test.
//
//   g++ -std=c++17 -DMSGPACK_NO_BOOST -Ibindings/cpp/include conformance.cpp -lzmq
//   ./a.out < list      # lines: VECTOR.bin, optionally a tab and the context hello's .bin
//
// A vector file holds the message's frames (topic, payload), each a uint32 little-endian length
// then the bytes. Each payload is copied into a buffer of exactly its size, so AddressSanitizer
// catches any read past its end.
//
// The checks a client makes against the publisher's hello (latent of 4 * latent_size bytes,
// blendshape count = hello's names) are made here, as infp::Client would need to (see NEEDS.md),
// and the error codes are derived from the decoders' messages.

#include <infp/client.hpp>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

namespace {

using Bytes = std::vector<unsigned char>;

std::vector<Bytes> read_frames(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  Bytes data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<Bytes> frames;
  std::size_t p = 0;
  while (p + 4 <= data.size()) {
    std::size_t n = static_cast<std::size_t>(data[p]) | (static_cast<std::size_t>(data[p + 1]) << 8) |
                    (static_cast<std::size_t>(data[p + 2]) << 16) |
                    (static_cast<std::size_t>(data[p + 3]) << 24);
    p += 4;
    if (n > data.size() - p) break;
    frames.emplace_back(data.begin() + static_cast<std::ptrdiff_t>(p),
                        data.begin() + static_cast<std::ptrdiff_t>(p + n));
    p += n;
  }
  while (frames.size() < 2) frames.emplace_back();
  return frames;
}

std::string json_str(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);  // UTF-8 passes through
    }
  }
  return out + "\"";
}

std::string json_num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

template <typename C>
std::string json_nums(const C& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + json_num(values[i]);
  return out + "]";
}

std::string json_strs(const std::vector<std::string>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + json_str(values[i]);
  return out + "]";
}

std::string optional_str(const std::string& s) { return s.empty() ? "null" : json_str(s); }

// The protocol's error code for one of the decoders' messages.
std::string code_of(const std::string& message) {
  if (message.rfind("unsupported protocol version", 0) == 0) return "unsupported_version";
  if (message.rfind("not a valid msgpack", 0) == 0 || message.rfind("trailing bytes", 0) == 0 ||
      message.rfind("payload is not a map", 0) == 0 || message.rfind("null data", 0) == 0)
    return "malformed";
  return "invalid";
}

std::string error_line(const std::string& message) {
  return "\"ok\": false, \"error\": " + json_str(code_of(message)) +
         ", \"message\": " + json_str(message) + "}";
}

std::string dump(const std::string& path, const std::string& context_path) {
  std::vector<Bytes> frames = read_frames(path);
  std::string name = path.substr(path.find_last_of('/') + 1);
  std::string out = "{\"file\": " + json_str(name) + ", ";
  const Bytes& payload = frames[1];
  const void* data = payload.empty() ? nullptr : payload.data();
  std::string topic(frames[0].begin(), frames[0].end());
  std::string error;

  if (topic.rfind("hello.", 0) == 0) {
    infp::Hello h;
    if (!infp::decode_hello(data, payload.size(), h, &error)) return out + error_line(error);
    return out + "\"ok\": true, \"kind\": \"hello\", \"fields\": {\"v\": " + std::to_string(h.v) +
           ", \"agent\": " + json_str(h.agent) + ", \"sdk\": " + json_str(h.sdk) +
           ", \"fps\": " + json_num(h.fps) + ", \"blendshapes\": " + json_strs(h.blendshapes) +
           ", \"latent_size\": " + std::to_string(h.latent_size) +
           ", \"motion_space\": " + json_str(h.motion_space) + ", \"head\": " + json_strs(h.head) +
           ", \"gaze\": " + json_strs(h.gaze) + ", \"control\": " + optional_str(h.control) +
           ", \"audio\": " + optional_str(h.audio) + "}}";
  }
  if (topic.rfind("motion.", 0) != 0) return out + "\"ok\": false, \"error\": \"unknown_topic\"}";

  infp::Motion m;
  if (!infp::decode_motion(data, payload.size(), m, &error)) return out + error_line(error);
  if (!context_path.empty()) {
    Bytes ctx = read_frames(context_path)[1];
    infp::Hello h;
    if (!infp::decode_hello(ctx.data(), ctx.size(), h, &error))
      return out + error_line("context hello: " + error);
    if (m.latent.size() != static_cast<std::size_t>(h.latent_size))
      return out + error_line("latent size differs from hello.latent_size");
    if (m.blendshapes.size() != h.blendshapes.size())
      return out + error_line("blendshape count differs from hello.blendshapes");
  }
  return out + "\"ok\": true, \"kind\": \"motion\", \"fields\": {\"v\": " + std::to_string(m.v) +
         ", \"agent\": " + json_str(m.agent) + ", \"seq\": " + std::to_string(m.seq) +
         ", \"index\": " + std::to_string(m.index) + ", \"t\": " + json_num(m.t) +
         ", \"blendshapes\": " + json_nums(m.blendshapes) + ", \"head\": " + json_nums(m.head) +
         ", \"gaze\": " + json_nums(m.gaze) + ", \"speaking\": " + json_num(m.speaking) +
         ", \"latent_bytes\": " + std::to_string(4 * m.latent.size()) +
         ", \"latent\": " + json_nums(m.latent) + "}}";
}

}  // namespace

int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    std::size_t tab = line.find('\t');
    std::string path = line.substr(0, tab);
    std::string context = tab == std::string::npos ? "" : line.substr(tab + 1);
    std::cout << dump(path, context) << "\n";
  }
  return 0;
}
