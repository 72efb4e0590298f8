// Conformance check of the C++ client's decoders against tests/vectors/: decodes each vector and
// prints what it made of it as one JSON line, for tests/test_bindings_cpp.py to compare with
// tests/vectors/manifest.json. Built with -fsanitize=address,undefined by that test.
//
//   g++ -std=c++17 -DMSGPACK_NO_BOOST -Ibindings/cpp/include conformance.cpp -lzmq
//   ./a.out < list      # lines: VECTOR.zmsg, optionally a tab and the context hello's .zmsg
//
// A vector file holds the message's frames (topic, payload), each a uint32 little-endian length
// then the bytes. Each payload is copied into a buffer of exactly its size, so AddressSanitizer
// catches any read past its end.
//
// With a context hello, infp::check_motion makes the checks a client makes against it (latent of
// latent_size values, blendshape count = hello's names), as infp::Client::poll does.

#include <infp/client.hpp>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
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

const char* code_name(infp::Error code) {
  switch (code) {
    case infp::Error::Malformed: return "malformed";
    case infp::Error::Invalid: return "invalid";
    case infp::Error::UnsupportedVersion: return "unsupported_version";
    case infp::Error::None: break;
  }
  return "none";  // rejected without a code: a bug the comparison reports
}

std::string error_line(infp::Error code, const std::string& message) {
  return std::string("\"ok\": false, \"error\": ") + json_str(code_name(code)) +
         ", \"message\": " + json_str(message) + "}";
}

std::string json_map(const std::map<std::string, std::string>& values) {
  std::string out = "{";
  for (const auto& kv : values) {
    if (out.size() > 1) out += ", ";
    out += json_str(kv.first) + ": " + json_str(kv.second);
  }
  return out + "}";
}

std::string dump(const std::string& path, const std::string& context_path) {
  std::vector<Bytes> frames = read_frames(path);
  std::string name = path.substr(path.find_last_of('/') + 1);
  std::string out = "{\"file\": " + json_str(name) + ", ";
  const Bytes& payload = frames[1];
  const void* data = payload.empty() ? nullptr : payload.data();
  std::string topic(frames[0].begin(), frames[0].end());
  std::string error;
  infp::Error code = infp::Error::None;

  if (topic.rfind("hello.", 0) == 0) {
    infp::Hello h;
    if (!infp::decode_hello(data, payload.size(), h, &error, &code))
      return out + error_line(code, error);
    return out + "\"ok\": true, \"kind\": \"hello\", \"fields\": {\"v\": " + std::to_string(h.v) +
           ", \"agent\": " + json_str(h.agent) + ", \"sdk\": " + json_str(h.sdk) +
           ", \"fps\": " + json_num(h.fps) + ", \"blendshapes\": " + json_strs(h.blendshapes) +
           ", \"latent_size\": " + std::to_string(h.latent_size) +
           ", \"motion_space\": " + json_str(h.motion_space) + ", \"head\": " + json_strs(h.head) +
           ", \"gaze\": " + json_strs(h.gaze) + ", \"control\": " + optional_str(h.control) +
           ", \"audio\": " + optional_str(h.audio) +
           ", \"conventions\": " + json_map(h.conventions) +
           ", \"frame_format\": " + optional_str(h.frame_format) + "}}";
  }
  if (topic.rfind("motion.", 0) != 0) return out + "\"ok\": false, \"error\": \"unknown_topic\"}";

  infp::Motion m;
  if (!infp::decode_motion(data, payload.size(), m, &error, &code))
    return out + error_line(code, error);
  if (!context_path.empty()) {
    Bytes ctx = read_frames(context_path)[1];
    infp::Hello h;
    if (!infp::decode_hello(ctx.data(), ctx.size(), h, &error, &code))
      return out + error_line(code, "context hello: " + error);
    if (!infp::check_motion(m, h, &error, &code)) return out + error_line(code, error);
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
