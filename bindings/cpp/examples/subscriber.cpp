// Prints what an infp-sdk publisher sends, one JSON object per line.
//
//   subscriber tcp://127.0.0.1:5555 [count=0 (forever)] [timeout_s=10] [agent=""]
//
// Exits 0 after `count` motion messages, 1 if nothing arrives for `timeout_s` seconds.

#include <infp/client.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s ENDPOINT [COUNT] [TIMEOUT_S] [AGENT]\n", argv[0]);
    return 2;
  }
  const long count = argc > 2 ? std::atol(argv[2]) : 0;
  const double timeout_s = argc > 3 ? std::atof(argv[3]) : 10.0;
  const std::string agent = argc > 4 ? argv[4] : "";

  infp::Client client;
  std::string error;
  if (!client.connect(argv[1], agent, &error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 2;
  }
  long received = 0;
  auto last = std::chrono::steady_clock::now();
  while (count == 0 || received < count) {
    infp::Event event = client.poll(100);
    auto now = std::chrono::steady_clock::now();
    if (event == infp::Event::None) {
      if (std::chrono::duration<double>(now - last).count() > timeout_s) {
        std::fprintf(stderr, "timed out after %ld motion messages\n", received);
        return 1;
      }
      continue;
    }
    last = now;
    if (event == infp::Event::Error) {
      std::printf("{\"type\":\"error\",\"message\":\"%s\"}\n", client.last_error().c_str());
    } else if (event == infp::Event::Hello) {
      const infp::Hello& h = *client.hello();
      std::printf(
          "{\"type\":\"hello\",\"v\":%d,\"agent\":\"%s\",\"fps\":%g,\"names\":%zu,"
          "\"first\":\"%s\",\"last\":\"%s\",\"latent_size\":%d,\"head\":%zu,\"gaze\":%zu}\n",
          h.v, h.agent.c_str(), h.fps, h.blendshapes.size(),
          h.blendshapes.empty() ? "" : h.blendshapes.front().c_str(),
          h.blendshapes.empty() ? "" : h.blendshapes.back().c_str(), h.latent_size,
          h.head.size(), h.gaze.size());
    } else if (event == infp::Event::Motion) {
      ++received;
      const infp::Motion& m = client.motion();
      std::printf(
          "{\"type\":\"motion\",\"seq\":%llu,\"index\":%lld,\"t\":%.9g,\"jawOpen\":%.9g,"
          "\"eyeBlinkLeft\":%.9g,\"tongueOut\":%.9g,\"yaw\":%.9g,\"gaze0\":%.9g,"
          "\"speaking\":%.9g,\"latent0\":%.9g,\"latent_size\":%zu,\"blendshapes\":%zu,"
          "\"dropped\":%llu}\n",
          static_cast<unsigned long long>(m.seq), static_cast<long long>(m.index), m.t,
          client.blendshape("jawOpen"), client.blendshape("EYEBLINKLEFT"),
          client.blendshape("tongueOut"), m.head[0], m.gaze[0], m.speaking,
          m.latent.empty() ? 0.0f : m.latent[0], m.latent.size(), m.blendshapes.size(),
          static_cast<unsigned long long>(client.dropped()));
    }
    std::fflush(stdout);
  }
  return 0;
}
