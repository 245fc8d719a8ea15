#include "video_writer.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "framesmith/error.h"

namespace framesmith::app {
namespace {

namespace fs = std::filesystem;

const char* const kX264Presets[] = {"ultrafast", "superfast", "veryfast", "faster",   "fast",
                                    "medium",    "slow",      "slower",   "veryslow", "placebo"};

std::string av_error_text(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, buf, sizeof buf);
  return buf;
}

int preset_rank(const std::string& preset) {
  const auto* end = std::end(kX264Presets);
  const auto* it = std::find(std::begin(kX264Presets), end, preset);
  return it == end ? -1 : int(it - std::begin(kX264Presets));
}

// What one encoder attempt needs; identical for every candidate.
struct EncoderSettings {
  int width = 0;  // coded (even) size
  int height = 0;
  AVRational frame_rate{30, 1};
  int crf = 16;
  std::string preset;
  bool global_header = false;
};

// The sizes of FFmpeg 7.1+ moved pixel-format lists behind avcodec_get_supported_config.
std::vector<AVPixelFormat> encoder_pixel_formats(const AVCodec* codec) {
  const AVPixelFormat* list = nullptr;
#if LIBAVCODEC_VERSION_INT >= AV_VERSION_INT(61, 13, 100)
  const void* configs = nullptr;
  int n = 0;
  if (avcodec_get_supported_config(nullptr, codec, AV_CODEC_CONFIG_PIX_FORMAT, 0, &configs, &n) >=
      0)
    list = static_cast<const AVPixelFormat*>(configs);
#else
  list = codec->pix_fmts;
#endif
  std::vector<AVPixelFormat> out;
  for (const AVPixelFormat* p = list; p && *p != AV_PIX_FMT_NONE; ++p) out.push_back(*p);
  return out;
}

// yuv420p where possible (plays everywhere), else nv12, else any format swscale can produce in
// system memory. Hardware-surface formats cannot be fed from RGB bytes without a device context.
AVPixelFormat pick_pixel_format(const AVCodec* codec) {
  const std::vector<AVPixelFormat> fmts = encoder_pixel_formats(codec);
  if (fmts.empty()) return AV_PIX_FMT_YUV420P;
  for (AVPixelFormat want : {AV_PIX_FMT_YUV420P, AV_PIX_FMT_NV12})
    if (std::find(fmts.begin(), fmts.end(), want) != fmts.end()) return want;
  for (AVPixelFormat f : fmts) {
    const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(f);
    if (d && !(d->flags & AV_PIX_FMT_FLAG_HWACCEL) && sws_isSupportedOutput(f)) return f;
  }
  return AV_PIX_FMT_NONE;
}

// Bitrate for encoders without a constant-quality mode: 0.25 bit/pixel at CRF 16, halving every
// 6 CRF steps like x264's quantiser scale.
int64_t bitrate_for(const EncoderSettings& s) {
  const double fps = av_q2d(s.frame_rate);
  const double bpp = 0.25 * std::pow(2.0, (16.0 - s.crf) / 6.0);
  return std::max<int64_t>(200000, int64_t(bpp * s.width * s.height * fps));
}

// nvenc / qsv know fewer preset names than x264: map to the nearest.
std::string coarse_preset(const std::string& preset) {
  const int r = preset_rank(preset);
  if (r <= 3) return "fast";
  if (r <= 5) return "medium";
  return "slow";
}

// Quality options per encoder family. Private options go through the dictionary, so an option an
// encoder build lacks is ignored instead of failing the attempt.
void set_quality(AVCodecContext* c, const std::string& name, const EncoderSettings& s,
                 AVDictionary** opts) {
  const std::string crf = std::to_string(s.crf);
  if (name == "libx264") {
    av_dict_set(opts, "crf", crf.c_str(), 0);
    av_dict_set(opts, "preset", s.preset.c_str(), 0);
  } else if (name == "h264_nvenc") {
    av_dict_set(opts, "preset", coarse_preset(s.preset).c_str(), 0);
    av_dict_set(opts, "rc", "vbr", 0);
    av_dict_set(opts, "cq", crf.c_str(), 0);
  } else if (name == "h264_qsv") {
    c->global_quality = s.crf;  // ICQ mode
    av_dict_set(opts, "preset", coarse_preset(s.preset).c_str(), 0);
  } else if (name == "mpeg4") {
    // Fixed quantiser: q ≈ 2^((crf-4)/8) gives q 3 at CRF 16 and q 31 from CRF 44 on.
    const int q = std::clamp(int(std::lround(std::pow(2.0, (s.crf - 4) / 8.0))), 1, 31);
    c->flags |= AV_CODEC_FLAG_QSCALE;
    c->global_quality = FF_QP2LAMBDA * q;
  } else {
    c->bit_rate = bitrate_for(s);
  }
}

// Opens encoder `name` or says why not (not in this build, no hardware, rejected settings).
AVCodecContext* try_encoder(const std::string& name, const EncoderSettings& s, std::string* why) {
  const AVCodec* codec = avcodec_find_encoder_by_name(name.c_str());
  if (!codec) {
    *why = "not in this FFmpeg build";
    return nullptr;
  }
  if (codec->type != AVMEDIA_TYPE_VIDEO) {
    *why = "not a video encoder";
    return nullptr;
  }
  const AVPixelFormat pix = pick_pixel_format(codec);
  if (pix == AV_PIX_FMT_NONE) {
    *why = "takes only hardware frames";
    return nullptr;
  }
  AVCodecContext* c = avcodec_alloc_context3(codec);
  if (!c) {
    *why = "out of memory";
    return nullptr;
  }
  c->width = s.width;
  c->height = s.height;
  c->framerate = s.frame_rate;
  c->time_base = av_inv_q(s.frame_rate);
  c->pix_fmt = pix;
  c->sample_aspect_ratio = AVRational{1, 1};
  // The RGB -> YUV conversion below uses BT.709; say so, so that players convert back alike.
  c->colorspace = AVCOL_SPC_BT709;
  c->color_primaries = AVCOL_PRI_BT709;
  c->color_trc = AVCOL_TRC_BT709;
  c->color_range = AVCOL_RANGE_MPEG;
  if (s.global_header) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  AVDictionary* opts = nullptr;
  set_quality(c, name, s, &opts);
  const int ret = avcodec_open2(c, codec, &opts);
  av_dict_free(&opts);
  if (ret < 0) {
    *why = "cannot open: " + av_error_text(ret);
    avcodec_free_context(&c);
    return nullptr;
  }
  return c;
}

// Copies an odd-sized frame into an even-sized buffer, repeating the last column and row.
void pad_to_even(const std::uint8_t* src, int stride, int w, int h, int cw, int ch,
                 std::vector<std::uint8_t>* dst) {
  const std::size_t row = std::size_t(cw) * 3;
  dst->resize(row * ch);
  for (int y = 0; y < ch; ++y) {
    const std::uint8_t* s = src + std::size_t(std::min(y, h - 1)) * stride;
    std::uint8_t* d = dst->data() + row * y;
    std::memcpy(d, s, std::size_t(w) * 3);
    for (int x = w; x < cw; ++x) std::memcpy(d + x * 3, s + (w - 1) * 3, 3);
  }
}

}  // namespace

void quiet_ffmpeg_logging() {
  av_log_set_level(AV_LOG_FATAL);
}

struct VideoWriter::Impl {
  std::string path;       // final name
  std::string temp_path;  // written until finish()
  int width = 0, height = 0, coded_w = 0, coded_h = 0;
  AVFormatContext* fmt = nullptr;
  AVCodecContext* enc = nullptr;
  AVStream* stream = nullptr;
  SwsContext* sws = nullptr;
  AVFrame* frame = nullptr;
  AVPacket* pkt = nullptr;
  std::vector<std::uint8_t> padded;
  std::int64_t next_pts = 0;
  bool committed = false;

  // Frees everything; without a commit the temporary file goes too (never the final name).
  ~Impl() {
    sws_freeContext(sws);
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&enc);
    if (fmt) {
      if (fmt->pb) avio_closep(&fmt->pb);
      avformat_free_context(fmt);
    }
    if (!committed && !temp_path.empty()) {
      std::error_code ec;
      fs::remove(temp_path, ec);
    }
  }

  [[noreturn]] void fail(const std::string& what, int err) const {
    throw Error(path + ": " + what + " (" + av_error_text(err) + ")");
  }

  // Sends one frame (nullptr: flush) and writes every packet the encoder hands back.
  void encode(AVFrame* f) {
    int ret = avcodec_send_frame(enc, f);
    if (ret < 0) fail(std::string("encoder ") + enc->codec->name + " rejected a frame", ret);
    for (;;) {
      ret = avcodec_receive_packet(enc, pkt);
      if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return;
      if (ret < 0) fail(std::string("encoder ") + enc->codec->name + " failed", ret);
      // Without durations the MP4 demuxer cannot time the last frame and drops it.
      if (pkt->duration <= 0) pkt->duration = 1;
      av_packet_rescale_ts(pkt, enc->time_base, stream->time_base);
      pkt->stream_index = stream->index;
      ret = av_interleaved_write_frame(fmt, pkt);
      if (ret < 0) fail("cannot write " + temp_path, ret);
    }
  }
};

VideoWriter::VideoWriter() : encoders_(default_encoders()) {}
VideoWriter::~VideoWriter() = default;
VideoWriter::VideoWriter(VideoWriter&&) noexcept = default;
VideoWriter& VideoWriter::operator=(VideoWriter&&) noexcept = default;

std::vector<std::string> VideoWriter::default_encoders() {
  // h264_vaapi is left out: it takes only VAAPI surfaces, which need a device context.
  return {"libx264",           "libopenh264", "h264_nvenc",   "h264_qsv", "h264_amf",
          "h264_videotoolbox", "h264_mf",     "h264_v4l2m2m", "mpeg4"};
}

void VideoWriter::set_encoders(std::vector<std::string> names) {
  encoders_ = std::move(names);
}

void VideoWriter::open(const std::string& path, int width, int height, double fps, int crf,
                       const std::string& preset,
                       const std::map<std::string, std::string>& metadata) {
  impl_.reset();
  attempts_.clear();
  encoder_.clear();
  path_ = path;
  frames_ = coded_w_ = coded_h_ = 0;
  if (width < 1 || height < 1 || width > 16384 || height > 16384)
    throw Error(path + ": bad video size " + std::to_string(width) + "x" + std::to_string(height));
  if (!std::isfinite(fps) || fps <= 0 || fps > 1000)
    throw Error(path + ": bad frame rate " + std::to_string(fps));
  if (crf < 0 || crf > 51) throw Error(path + ": CRF " + std::to_string(crf) + " is not in 0..51");
  if (preset_rank(preset) < 0)
    throw Error(path + ": unknown preset '" + preset + "' (ultrafast ... medium ... placebo)");
  if (encoders_.empty()) throw Error(path + ": no encoders to try");

  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error(path + ": the folder '" + dir.string() + "' does not exist");
  if (fs::is_directory(target, ec)) throw Error(path + ": is a folder, not a file name");

  auto impl = std::make_unique<Impl>();
  Impl& m = *impl;
  m.path = path;
  m.width = width;
  m.height = height;
  m.coded_w = width + (width & 1);
  m.coded_h = height + (height & 1);
  // "file:" keeps names with a colon from being taken for a protocol; faststart reopens this URL.
  const std::string url = "file:" + path + ".partial";
  int ret = avformat_alloc_output_context2(&m.fmt, nullptr, "mp4", url.c_str());
  if (ret < 0 || !m.fmt) m.fail("cannot set up the MP4 muxer", ret);
  ret = avio_open(&m.fmt->pb, url.c_str(), AVIO_FLAG_WRITE);
  if (ret < 0) m.fail("cannot create a file in the folder '" + dir.string() + "'", ret);
  m.temp_path = path + ".partial";

  EncoderSettings s;
  s.width = m.coded_w;
  s.height = m.coded_h;
  s.frame_rate = av_d2q(fps, 1001000);
  s.crf = crf;
  s.preset = preset;
  s.global_header = (m.fmt->oformat->flags & AVFMT_GLOBALHEADER) != 0;
  for (const std::string& name : encoders_) {
    std::string why;
    m.enc = try_encoder(name, s, &why);
    if (m.enc) {
      encoder_ = name;
      break;
    }
    attempts_.push_back(name + ": " + why);
  }
  if (!m.enc) {
    std::string all;
    for (const auto& a : attempts_) all += (all.empty() ? "" : "; ") + a;
    throw Error(path + ": no usable video encoder (" + all + ")");
  }

  m.stream = avformat_new_stream(m.fmt, nullptr);
  if (!m.stream) m.fail("cannot add a video stream", AVERROR(ENOMEM));
  ret = avcodec_parameters_from_context(m.stream->codecpar, m.enc);
  if (ret < 0) m.fail("cannot copy encoder parameters", ret);
  m.stream->time_base = m.enc->time_base;
  m.stream->avg_frame_rate = m.enc->framerate;

  for (const auto& [key, value] : metadata)
    if (!key.empty() && key != kSizeTag)
      av_dict_set(&m.fmt->metadata, key.c_str(), value.c_str(), 0);
  if (m.coded_w != width || m.coded_h != height) {
    const std::string size = std::to_string(width) + "x" + std::to_string(height);
    av_dict_set(&m.fmt->metadata, kSizeTag, size.c_str(), 0);
  }

  AVDictionary* mux_opts = nullptr;
  // faststart: index at the front (plays while downloading); use_metadata_tags: custom keys.
  av_dict_set(&mux_opts, "movflags", "+faststart+use_metadata_tags", 0);
  ret = avformat_write_header(m.fmt, &mux_opts);
  av_dict_free(&mux_opts);
  if (ret < 0) m.fail("cannot write the MP4 header to " + m.temp_path, ret);

  m.frame = av_frame_alloc();
  m.pkt = av_packet_alloc();
  if (!m.frame || !m.pkt) m.fail("cannot allocate frames", AVERROR(ENOMEM));
  m.frame->format = m.enc->pix_fmt;
  m.frame->width = m.coded_w;
  m.frame->height = m.coded_h;
  ret = av_frame_get_buffer(m.frame, 0);
  if (ret < 0) m.fail("cannot allocate a frame", ret);
  m.sws = sws_getContext(m.coded_w, m.coded_h, AV_PIX_FMT_RGB24, m.coded_w, m.coded_h,
                         m.enc->pix_fmt, SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INP,
                         nullptr, nullptr, nullptr);
  if (!m.sws) m.fail("cannot convert RGB to the encoder's pixel format", AVERROR(EINVAL));
  const int* bt709 = sws_getCoefficients(SWS_CS_ITU709);
  sws_setColorspaceDetails(m.sws, bt709, 1, bt709, 0, 0, 1 << 16, 1 << 16);
  coded_w_ = m.coded_w;
  coded_h_ = m.coded_h;
  impl_ = std::move(impl);
}

void VideoWriter::write_frame(const std::uint8_t* rgb24, int stride) {
  if (!impl_) throw Error(path_ + ": write_frame on a video that is not open");
  Impl& m = *impl_;
  if (!rgb24) throw Error(path_ + ": write_frame got no pixels");
  if (stride < m.width * 3)
    throw Error(path_ + ": row stride " + std::to_string(stride) +
                " is less than width*3 = " + std::to_string(m.width * 3));
  try {
    const std::uint8_t* src = rgb24;
    int src_stride = stride;
    if (m.coded_w != m.width || m.coded_h != m.height) {
      pad_to_even(rgb24, stride, m.width, m.height, m.coded_w, m.coded_h, &m.padded);
      src = m.padded.data();
      src_stride = m.coded_w * 3;
    }
    // The encoder may still hold the previous frame's buffer.
    const int ret = av_frame_make_writable(m.frame);
    if (ret < 0) m.fail("cannot allocate a frame", ret);
    sws_scale(m.sws, &src, &src_stride, 0, m.coded_h, m.frame->data, m.frame->linesize);
    m.frame->pts = m.next_pts++;
    m.encode(m.frame);
    ++frames_;
  } catch (...) {
    impl_.reset();  // removes the temporary file; the final name keeps its old content
    throw;
  }
}

void VideoWriter::finish() {
  if (!impl_) throw Error(path_ + ": finish on a video that is not open");
  try {
    Impl& m = *impl_;
    if (m.next_pts == 0) throw Error(path_ + ": no frames were written");
    m.encode(nullptr);
    int ret = av_write_trailer(m.fmt);
    if (ret < 0) m.fail("cannot finish " + m.temp_path, ret);
    if (m.fmt->pb->error < 0) m.fail("cannot write " + m.temp_path, m.fmt->pb->error);
    ret = avio_closep(&m.fmt->pb);
    if (ret < 0) m.fail("cannot write " + m.temp_path, ret);
    std::error_code ec;
    fs::rename(m.temp_path, m.path, ec);
    if (ec)
      throw Error(path_ + ": cannot rename " + m.temp_path + " into place (" + ec.message() + ")");
    m.committed = true;
  } catch (...) {
    impl_.reset();
    throw;
  }
  impl_.reset();
}

bool VideoWriter::is_open() const {
  return impl_ != nullptr;
}
const std::string& VideoWriter::path() const {
  return path_;
}
const std::string& VideoWriter::encoder() const {
  return encoder_;
}
const std::vector<std::string>& VideoWriter::encoder_attempts() const {
  return attempts_;
}
int VideoWriter::frames_written() const {
  return frames_;
}
int VideoWriter::coded_width() const {
  return coded_w_;
}
int VideoWriter::coded_height() const {
  return coded_h_;
}

}  // namespace framesmith::app
