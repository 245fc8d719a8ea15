#include "video_reader.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "framesmith/error.h"
#include "video_writer.h"

namespace framesmith::app {
namespace {

std::string av_error_text(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, buf, sizeof buf);
  return buf;
}

// swscale's YUV -> RGB matrix for the stream's tagged colour space. Untagged video gets BT.601,
// FFmpeg's own default.
int sws_colorspace(AVColorSpace cs) {
  switch (cs) {
    case AVCOL_SPC_BT709:
      return SWS_CS_ITU709;
    case AVCOL_SPC_FCC:
      return SWS_CS_FCC;
    case AVCOL_SPC_SMPTE240M:
      return SWS_CS_SMPTE240M;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL:
      return SWS_CS_BT2020;
    default:
      return SWS_CS_ITU601;
  }
}

}  // namespace

struct VideoReader::Impl {
  std::string path;
  AVFormatContext* fmt = nullptr;
  AVCodecContext* dec = nullptr;
  AVFrame* frame = nullptr;
  AVPacket* pkt = nullptr;
  SwsContext* sws = nullptr;
  int stream = -1;
  bool flushing = false;
  int next_index = 0;  // index of the frame decode_next() will produce
  int width = 0, height = 0;
  double fps = 0;
  int count = 0;
  int indexed = 0;
  std::string codec;
  std::string pixel_format;
  int bit_depth = 8;
  // Frame timing seen by read_all (time base units; -1: no timestamp yet).
  std::int64_t last_pts = -1;
  double min_interval = 0, max_interval = 0;
  std::map<std::string, std::string> metadata;
  std::vector<std::uint8_t> full;  // one converted frame at the stored size

  ~Impl() { close(); }

  [[noreturn]] void fail(const std::string& what, int err) const {
    throw Error(path + ": " + what + " (" + av_error_text(err) + ")");
  }

  void close() {
    sws_freeContext(sws);
    sws = nullptr;
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    stream = -1;
    flushing = false;
    next_index = 0;
    last_pts = -1;
    min_interval = max_interval = 0;
  }

  void open_file() {
    close();
    const std::string url = "file:" + path;
    int ret = avformat_open_input(&fmt, url.c_str(), nullptr, nullptr);
    if (ret < 0) fail("cannot open the video", ret);
    ret = avformat_find_stream_info(fmt, nullptr);
    if (ret < 0) fail("cannot read the stream information", ret);
    const AVCodec* codec_found = nullptr;
    stream = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec_found, 0);
    if (stream < 0) fail("no video stream", stream);
    const AVStream* st = fmt->streams[stream];
    dec = avcodec_alloc_context3(codec_found);
    frame = av_frame_alloc();
    pkt = av_packet_alloc();
    if (!dec || !frame || !pkt) fail("out of memory", AVERROR(ENOMEM));
    ret = avcodec_parameters_to_context(dec, st->codecpar);
    if (ret < 0) fail("bad codec parameters", ret);
    ret = avcodec_open2(dec, codec_found, nullptr);
    if (ret < 0) fail(std::string("cannot open the ") + codec_found->name + " decoder", ret);
    read_properties(st);
  }

  void read_properties(const AVStream* st) {
    codec = dec->codec->name;
    const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(AVPixelFormat(st->codecpar->format));
    pixel_format = desc ? desc->name : "unknown";
    bit_depth = desc && desc->nb_components > 0 ? desc->comp[0].depth : 8;
    metadata.clear();
    const AVDictionaryEntry* e = nullptr;
    while ((e = av_dict_get(fmt->metadata, "", e, AV_DICT_IGNORE_SUFFIX)))
      metadata[e->key] = e->value;
    width = st->codecpar->width;
    height = st->codecpar->height;
    // A padded odd-sized video: the stored size is one more than the source in either direction.
    auto it = metadata.find(kSizeTag);
    if (it != metadata.end()) {
      int w = 0, h = 0;
      if (std::sscanf(it->second.c_str(), "%dx%d", &w, &h) == 2 && w >= width - 1 && w <= width &&
          h >= height - 1 && h <= height && w > 0 && h > 0) {
        width = w;
        height = h;
      }
      metadata.erase(it);
    }
    AVRational rate = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
    fps = rate.num > 0 && rate.den > 0 ? av_q2d(rate) : 0.0;
    count = indexed = int(st->nb_frames);
    if (count <= 0 && st->duration > 0 && fps > 0)
      count = int(av_q2d(st->time_base) * double(st->duration) * fps + 0.5);
  }

  // Decodes the next frame into `frame`; false at the end of the stream.
  bool decode_next() {
    for (;;) {
      int ret = avcodec_receive_frame(dec, frame);
      if (ret == 0) return true;
      if (ret == AVERROR_EOF) return false;
      if (ret != AVERROR(EAGAIN)) fail("cannot decode frame " + std::to_string(next_index), ret);
      if (flushing) return false;
      ret = av_read_frame(fmt, pkt);
      if (ret == AVERROR_EOF) {
        avcodec_send_packet(dec, nullptr);
        flushing = true;
        continue;
      }
      if (ret < 0) fail("cannot read the file", ret);
      if (pkt->stream_index == stream) ret = avcodec_send_packet(dec, pkt);
      av_packet_unref(pkt);
      if (ret < 0 && ret != AVERROR(EAGAIN))
        fail("cannot decode frame " + std::to_string(next_index), ret);
    }
  }

  // The time since the previous frame, for min / max_frame_interval_s.
  void note_timestamp() {
    const std::int64_t pts = frame->best_effort_timestamp;
    if (pts == AV_NOPTS_VALUE) return;
    if (last_pts >= 0 && pts > last_pts) {
      const double dt = double(pts - last_pts) * av_q2d(fmt->streams[stream]->time_base);
      min_interval = min_interval > 0 ? std::min(min_interval, dt) : dt;
      max_interval = std::max(max_interval, dt);
    }
    last_pts = pts;
  }

  // The decoded frame as RGB24, cropped to the source size.
  void convert(std::uint8_t* out) {
    if (frame->width < width || frame->height < height)
      throw Error(path + ": frame " + std::to_string(next_index) + " is " +
                  std::to_string(frame->width) + "x" + std::to_string(frame->height) +
                  ", smaller than the video's " + std::to_string(width) + "x" +
                  std::to_string(height));
    const AVPixelFormat src_fmt = AVPixelFormat(frame->format);
    sws = sws_getCachedContext(
        sws, frame->width, frame->height, src_fmt, frame->width, frame->height, AV_PIX_FMT_RGB24,
        SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr);
    if (!sws) fail("cannot convert frames to RGB", AVERROR(EINVAL));
    const int* coeffs = sws_getCoefficients(sws_colorspace(frame->colorspace));
    const int full_range = frame->color_range == AVCOL_RANGE_JPEG ? 1 : 0;
    sws_setColorspaceDetails(sws, coeffs, full_range, coeffs, 1, 0, 1 << 16, 1 << 16);
    const int row = frame->width * 3;
    full.resize(std::size_t(row) * frame->height);
    std::uint8_t* dst[4] = {full.data(), nullptr, nullptr, nullptr};
    int dst_stride[4] = {row, 0, 0, 0};
    sws_scale(sws, frame->data, frame->linesize, 0, frame->height, dst, dst_stride);
    for (int y = 0; y < height; ++y)
      std::memcpy(out + std::size_t(y) * width * 3, full.data() + std::size_t(y) * row,
                  std::size_t(width) * 3);
  }
};

VideoReader::VideoReader() = default;
VideoReader::~VideoReader() = default;
VideoReader::VideoReader(VideoReader&&) noexcept = default;
VideoReader& VideoReader::operator=(VideoReader&&) noexcept = default;

void VideoReader::open(const std::string& path) {
  impl_.reset();
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->open_file();
  impl_ = std::move(impl);
}

namespace {
const std::string kEmpty;
const std::map<std::string, std::string> kNoMetadata;
}  // namespace

bool VideoReader::is_open() const {
  return impl_ != nullptr;
}
int VideoReader::width() const {
  return impl_ ? impl_->width : 0;
}
int VideoReader::height() const {
  return impl_ ? impl_->height : 0;
}
double VideoReader::fps() const {
  return impl_ ? impl_->fps : 0.0;
}
int VideoReader::frame_count() const {
  return impl_ ? impl_->count : 0;
}
const std::map<std::string, std::string>& VideoReader::metadata() const {
  return impl_ ? impl_->metadata : kNoMetadata;
}
const std::string& VideoReader::codec() const {
  return impl_ ? impl_->codec : kEmpty;
}

int VideoReader::indexed_frame_count() const {
  return impl_ ? std::max(0, impl_->indexed) : 0;
}
const std::string& VideoReader::pixel_format() const {
  return impl_ ? impl_->pixel_format : kEmpty;
}
int VideoReader::bit_depth() const {
  return impl_ ? impl_->bit_depth : 0;
}
double VideoReader::min_frame_interval_s() const {
  return impl_ ? impl_->min_interval : 0.0;
}
double VideoReader::max_frame_interval_s() const {
  return impl_ ? impl_->max_interval : 0.0;
}

std::vector<std::uint8_t> VideoReader::read_frame(int index) {
  if (!impl_) throw Error("VideoReader: read_frame before open");
  Impl& m = *impl_;
  if (index < 0) throw Error(m.path + ": no frame " + std::to_string(index));
  if (index < m.next_index) m.open_file();  // rewinding: reopening is simpler than seeking
  std::vector<std::uint8_t> out(std::size_t(m.width) * m.height * 3);
  while (m.next_index <= index) {
    if (!m.decode_next())
      throw Error(m.path + ": no frame " + std::to_string(index) + " (the video has " +
                  std::to_string(m.next_index) + " frames)");
    if (m.next_index == index) m.convert(out.data());
    ++m.next_index;
  }
  return out;
}

Frames VideoReader::read_all() {
  if (!impl_) throw Error("VideoReader: read_all before open");
  Impl& m = *impl_;
  if (m.next_index != 0 || m.flushing) m.open_file();
  Frames f;
  f.width = m.width;
  f.height = m.height;
  const std::size_t frame_bytes = std::size_t(m.width) * m.height * 3;
  if (m.count > 0) f.rgb.reserve(frame_bytes * m.count);
  while (m.decode_next()) {
    f.rgb.resize(f.rgb.size() + frame_bytes);
    m.convert(f.rgb.data() + f.rgb.size() - frame_bytes);
    m.note_timestamp();
    ++m.next_index;
  }
  f.count = m.next_index;
  m.count = f.count;
  return f;
}

}  // namespace framesmith::app
