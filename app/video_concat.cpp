#include "video_concat.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
}

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>

#include "framesmith/error.h"

namespace framesmith::app {
namespace {

namespace fs = std::filesystem;

std::string av_error_text(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, buf, sizeof buf);
  return buf;
}

[[noreturn]] void fail(const std::string& path, const std::string& what, int err) {
  throw Error(path + ": " + what + " (" + av_error_text(err) + ")");
}

// One part, opened for reading; its first video stream.
struct Input {
  AVFormatContext* fmt = nullptr;
  AVStream* stream = nullptr;
  explicit Input(const std::string& path) {
    const std::string url = "file:" + path;
    int ret = avformat_open_input(&fmt, url.c_str(), nullptr, nullptr);
    if (ret < 0) fail(path, "cannot open", ret);
    ret = avformat_find_stream_info(fmt, nullptr);
    if (ret < 0) fail(path, "cannot read the stream", ret);
    const int i = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
    if (i < 0) fail(path, "no video stream", i);
    stream = fmt->streams[i];
  }
  ~Input() { avformat_close_input(&fmt); }
  Input(const Input&) = delete;
  Input& operator=(const Input&) = delete;
};

// Packets can be copied from one part into the other's stream only when a decoder set up for
// the first decodes the second: same codec, size, pixel format and codec headers (SPS/PPS).
bool same_stream(const AVCodecParameters* a, const AVCodecParameters* b) {
  return a->codec_id == b->codec_id && a->width == b->width && a->height == b->height &&
         a->format == b->format && a->extradata_size == b->extradata_size &&
         (a->extradata_size == 0 ||
          std::memcmp(a->extradata, b->extradata, std::size_t(a->extradata_size)) == 0);
}

// The output MP4, written to a temporary name; removed unless committed.
struct Output {
  std::string path, temp;
  AVFormatContext* fmt = nullptr;
  AVStream* stream = nullptr;
  bool committed = false;

  Output(const std::string& p, const Input& first, const std::map<std::string, std::string>& meta)
      : path(p), temp(p + ".partial") {
    const std::string url = "file:" + temp;
    int ret = avformat_alloc_output_context2(&fmt, nullptr, "mp4", url.c_str());
    if (ret < 0 || !fmt) fail(path, "cannot set up the MP4 muxer", ret);
    stream = avformat_new_stream(fmt, nullptr);
    if (!stream) fail(path, "cannot add the video stream", AVERROR(ENOMEM));
    ret = avcodec_parameters_copy(stream->codecpar, first.stream->codecpar);
    if (ret < 0) fail(path, "cannot copy the stream parameters", ret);
    stream->codecpar->codec_tag = 0;
    stream->time_base = first.stream->time_base;
    stream->avg_frame_rate = first.stream->avg_frame_rate;
    // The first part's tags carry the stored size of odd-sized videos ("framesmith_size").
    av_dict_copy(&fmt->metadata, first.fmt->metadata, 0);
    for (const auto& [key, value] : meta)
      av_dict_set(&fmt->metadata, key.c_str(), value.c_str(), 0);
    ret = avio_open(&fmt->pb, url.c_str(), AVIO_FLAG_WRITE);
    if (ret < 0) fail(path, "cannot create " + temp, ret);
    AVDictionary* opts = nullptr;
    av_dict_set(&opts, "movflags", "+faststart+use_metadata_tags", 0);
    ret = avformat_write_header(fmt, &opts);
    av_dict_free(&opts);
    if (ret < 0) fail(path, "cannot write the MP4 header", ret);
  }
  ~Output() {
    if (fmt) {
      if (fmt->pb) avio_closep(&fmt->pb);
      avformat_free_context(fmt);
    }
    if (!committed) {
      std::error_code ec;
      fs::remove(temp, ec);
    }
  }
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  // Copies every packet of `in`'s stream, shifted by `offset` (output time base); returns where
  // the part ends, the next part's offset.
  std::int64_t copy(Input& in, std::int64_t offset) {
    AVPacket* pkt = av_packet_alloc();
    std::int64_t end = offset;
    int ret = 0;
    while ((ret = av_read_frame(in.fmt, pkt)) >= 0) {
      if (pkt->stream_index != in.stream->index) {
        av_packet_unref(pkt);
        continue;
      }
      av_packet_rescale_ts(pkt, in.stream->time_base, stream->time_base);
      if (pkt->pts != AV_NOPTS_VALUE) pkt->pts += offset;
      if (pkt->dts != AV_NOPTS_VALUE) pkt->dts += offset;
      if (pkt->pts != AV_NOPTS_VALUE)
        end = std::max(end, pkt->pts + std::max<std::int64_t>(1, pkt->duration));
      pkt->stream_index = stream->index;
      pkt->pos = -1;
      ret = av_interleaved_write_frame(fmt, pkt);
      if (ret < 0) {
        av_packet_free(&pkt);
        fail(path, "cannot write " + temp, ret);
      }
    }
    av_packet_free(&pkt);
    if (ret != AVERROR_EOF) fail(path, "cannot read a part", ret);
    return end;
  }

  void finish() {
    int ret = av_write_trailer(fmt);
    if (ret < 0) fail(path, "cannot finish " + temp, ret);
    ret = avio_closep(&fmt->pb);
    if (ret < 0) fail(path, "cannot write " + temp, ret);
    std::error_code ec;
    fs::rename(temp, path, ec);
    if (ec) throw Error(path + ": cannot rename " + temp + " into place (" + ec.message() + ")");
    committed = true;
  }
};

}  // namespace

bool concat_videos(const std::vector<std::string>& parts, const std::string& path,
                   const std::map<std::string, std::string>& metadata) {
  if (parts.empty()) throw Error(path + ": no video parts to join");
  // Parts are checked against the first before any is copied: one open at a time, so joining
  // holds one part's index in memory, not the whole video's.
  AVCodecParameters* first = avcodec_parameters_alloc();
  {
    Input in(parts.front());
    avcodec_parameters_copy(first, in.stream->codecpar);
  }
  bool same = true;
  for (std::size_t i = 1; i < parts.size() && same; ++i) {
    Input in(parts[i]);
    same = same_stream(first, in.stream->codecpar);
  }
  avcodec_parameters_free(&first);
  if (!same) return false;
  std::unique_ptr<Output> out;
  std::int64_t offset = 0;
  for (const std::string& part : parts) {
    Input in(part);
    if (!out) out = std::make_unique<Output>(path, in, metadata);
    offset = out->copy(in, offset);
  }
  out->finish();
  return true;
}

}  // namespace framesmith::app
