// Node-API addon: JPEG decoding with the system libjpeg(-turbo), off the JS thread.
//
// `decode(input, scratch?)` takes a file path or a Buffer and returns a Promise. The work
// (reading the file, parsing the markers, decoding) runs on libuv's threadpool as napi async
// work. The promise resolves to { data, width, height, channels } (data: uint8 HWC RGB
// pixels, channels 3, as sharp's `.raw()` gives them: sharp turns libvips' one-band grayscale
// JPEG into sRGB by copying the band, so a gray JPEG comes back as three equal channels), or to
// { fallback, detail } where this decoder cannot promise sharp's exact result:
//
//   not-jpeg     no SOI marker (PNG, WebP, text, ...)
//   read         the file cannot be read (the caller's decoder then names the reason)
//   exif         an EXIF orientation other than 1, or an EXIF block this parser does not
//                read with certainty (sharp's .rotate() applies the orientation)
//   icc          an embedded ICC profile (sharp colour-manages to sRGB)
//   color        CMYK / YCCK (Adobe) or a component count other than 1 or 3
//   warning      libjpeg reported a warning (corrupt data: sharp fails on warnings)
//   error        libjpeg failed
//   limit        over sharp's default input pixel limit, or a progressive JPEG with as many
//                scans as libvips refuses
//
// The caller decodes a fallback with sharp, so the two paths never give different pixels.
//
// `scratch` (a Uint8Array the caller leaves alone until the promise settles): when the pixels
// fit, they are decoded straight into it and `data` is a view of its first bytes, so a load of
// thousands of faces neither allocates nor copies a buffer per image. Otherwise `data` is a new
// Buffer.
// Decoding settings are libjpeg's defaults, as libvips leaves them: islow DCT, fancy
// upsampling, block smoothing, scale 1/1.

#include <node_api.h>

#include <csetjmp>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

extern "C" {
#include <jpeglib.h>
}

namespace {

// sharp's default limitInputPixels (0x3FFF * 0x3FFF).
constexpr uint64_t kMaxPixels = 268402689ULL;
// libvips refuses progressive JPEGs with 100 scans or more (unless "unlimited"); stay well below.
constexpr int kMaxScans = 50;

struct Result {
  uint8_t* scratch = nullptr;  // the caller's buffer, used when the pixels fit
  size_t scratch_bytes = 0;
  bool in_scratch = false;     // pixels == scratch
  uint8_t* pixels = nullptr;   // malloc'd (unless in_scratch); owned until handed to JS
  int width = 0;
  int height = 0;
  int channels = 0;
  const char* fallback = nullptr;  // set: use sharp instead
  char detail[JMSG_LENGTH_MAX] = {0};
};

struct ErrorManager {
  jpeg_error_mgr pub;
  jmp_buf jump;
  const char* kind;  // "error" or "warning"
  char message[JMSG_LENGTH_MAX];
};

void on_error(j_common_ptr cinfo) {
  ErrorManager* m = reinterpret_cast<ErrorManager*>(cinfo->err);
  m->kind = "error";
  (*cinfo->err->format_message)(cinfo, m->message);
  longjmp(m->jump, 1);
}

// A warning (corrupt data, premature end of file, ...) stops the decode at once: sharp fails
// on warnings by default, so only sharp can say what happens to such a file.
void on_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  ErrorManager* m = reinterpret_cast<ErrorManager*>(cinfo->err);
  m->kind = "warning";
  (*cinfo->err->format_message)(cinfo, m->message);
  longjmp(m->jump, 1);
}

struct Progress {
  jpeg_progress_mgr pub;
  ErrorManager* err;
};

void on_progress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  j_decompress_ptr d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->input_scan_number >= kMaxScans) {
    Progress* p = reinterpret_cast<Progress*>(cinfo->progress);
    p->err->kind = "limit";
    snprintf(p->err->message, sizeof(p->err->message), "%d or more scans", kMaxScans);
    longjmp(p->err->jump, 1);
  }
}

uint16_t get16(const uint8_t* p, bool le) { return le ? uint16_t(p[0] | (p[1] << 8)) : uint16_t((p[0] << 8) | p[1]); }
uint32_t get32(const uint8_t* p, bool le) {
  return le ? uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24)
            : (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// The orientation in an APP1 "Exif" block: 1 when IFD0 has no Orientation tag, its value when
// it has one well-formed (SHORT, count 1), 0 when the block is anything this cannot read with
// certainty (the caller falls back to sharp, which reads EXIF with libexif).
int exif_orientation(const uint8_t* d, size_t n) {
  if (n < 6 + 8 || memcmp(d, "Exif\0\0", 6) != 0) return 0;
  const uint8_t* t = d + 6;
  size_t len = n - 6;
  bool le;
  if (t[0] == 'I' && t[1] == 'I') le = true;
  else if (t[0] == 'M' && t[1] == 'M') le = false;
  else return 0;
  if (get16(t + 2, le) != 42) return 0;
  uint32_t ifd = get32(t + 4, le);
  if (ifd < 8 || ifd > len || len - ifd < 2) return 0;
  uint16_t count = get16(t + ifd, le);
  if ((len - ifd - 2) / 12 < count) return 0;
  int found = 1;
  bool seen = false;
  for (uint16_t i = 0; i < count; i++) {
    const uint8_t* e = t + ifd + 2 + 12 * size_t(i);
    if (get16(e, le) != 0x0112) continue;
    if (seen || get16(e + 2, le) != 3 || get32(e + 4, le) != 1) return 0;
    seen = true;
    found = get16(e + 8, le);
  }
  return found;
}

// Decodes `data` into r (pixels or a fallback reason). Plain C data only between setjmp and
// the libjpeg calls: longjmp must not skip a C++ destructor.
void decode_jpeg(const uint8_t* data, size_t length, Result* r) {
  if (length < 3 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF) {
    r->fallback = "not-jpeg";
    return;
  }
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  Progress progress;
  // Zeroed: should jpeg_create_decompress itself fail, jpeg_destroy_decompress sees no memory manager.
  memset(&cinfo, 0, sizeof(cinfo));
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error;
  err.pub.emit_message = on_message;
  err.kind = nullptr;
  err.message[0] = 0;
  uint8_t* volatile pixels = nullptr;
  if (setjmp(err.jump)) {
    if (!r->in_scratch) free(pixels);
    r->in_scratch = false;
    r->pixels = nullptr;
    r->fallback = err.kind ? err.kind : "error";
    snprintf(r->detail, sizeof(r->detail), "%s", err.message);
    jpeg_destroy_decompress(&cinfo);
    return;
  }
  jpeg_create_decompress(&cinfo);
  progress.pub.progress_monitor = on_progress;
  progress.err = &err;
  cinfo.progress = &progress.pub;
  jpeg_mem_src(&cinfo, const_cast<unsigned char*>(data), static_cast<unsigned long>(length));
  jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_save_markers(&cinfo, JPEG_APP0 + 2, 0xFFFF);
  jpeg_read_header(&cinfo, TRUE);

  const char* reason = nullptr;
  int exif_blocks = 0;
  for (jpeg_saved_marker_ptr m = cinfo.marker_list; m && !reason; m = m->next) {
    if (m->marker == JPEG_APP0 + 1 && m->data_length >= 4 && memcmp(m->data, "Exif", 4) == 0) {
      exif_blocks++;
      int o = exif_orientation(m->data, m->data_length);
      if (o != 1 || exif_blocks > 1) {
        reason = "exif";
        snprintf(r->detail, sizeof(r->detail), o == 0 ? "EXIF block not read with certainty" : exif_blocks > 1 ? "more than one EXIF block" : "EXIF orientation %d", o);
      }
    } else if (m->marker == JPEG_APP0 + 2 && m->data_length >= 11 && memcmp(m->data, "ICC_PROFILE", 11) == 0) {
      reason = "icc";
      snprintf(r->detail, sizeof(r->detail), "embedded ICC profile");
    }
  }
  if (!reason) {
    bool gray = cinfo.jpeg_color_space == JCS_GRAYSCALE && cinfo.num_components == 1;
    bool color = (cinfo.jpeg_color_space == JCS_YCbCr || cinfo.jpeg_color_space == JCS_RGB) && cinfo.num_components == 3;
    if (!gray && !color) {
      reason = "color";
      snprintf(r->detail, sizeof(r->detail), "colour space %d with %d components", int(cinfo.jpeg_color_space), cinfo.num_components);
    } else if (cinfo.data_precision != 8) {
      reason = "color";
      snprintf(r->detail, sizeof(r->detail), "%d-bit samples", cinfo.data_precision);
    } else if (uint64_t(cinfo.image_width) * cinfo.image_height > kMaxPixels) {
      reason = "limit";
      snprintf(r->detail, sizeof(r->detail), "%ux%u is over sharp's pixel limit", cinfo.image_width, cinfo.image_height);
    } else {
      // Gray to RGB in libjpeg copies the sample to all three: what sharp's B_W -> sRGB gives.
      cinfo.out_color_space = JCS_RGB;
    }
  }
  if (reason) {
    r->fallback = reason;
    jpeg_destroy_decompress(&cinfo);
    return;
  }
  jpeg_start_decompress(&cinfo);
  const size_t stride = size_t(cinfo.output_width) * cinfo.output_components;
  r->in_scratch = r->scratch && stride * cinfo.output_height <= r->scratch_bytes;
  pixels = r->in_scratch ? r->scratch : static_cast<uint8_t*>(malloc(stride * cinfo.output_height));
  if (!pixels) {
    r->fallback = "error";
    snprintf(r->detail, sizeof(r->detail), "out of memory");
    jpeg_destroy_decompress(&cinfo);
    return;
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW rows[8];
    JDIMENSION want = cinfo.output_height - cinfo.output_scanline;
    if (want > 8) want = 8;
    for (JDIMENSION i = 0; i < want; i++) rows[i] = pixels + (cinfo.output_scanline + i) * stride;
    jpeg_read_scanlines(&cinfo, rows, want);
  }
  // Reads to EOI: damage after the last scanline is a warning too, and then sharp decides.
  jpeg_finish_decompress(&cinfo);
  r->width = int(cinfo.output_width);
  r->height = int(cinfo.output_height);
  r->channels = cinfo.output_components;
  r->pixels = pixels;
  pixels = nullptr;
  jpeg_destroy_decompress(&cinfo);
}

// Reads a whole file; false (errno-style failure) lets sharp report the problem its own way.
bool read_file(const std::string& path, uint8_t** data, size_t* length) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
    close(fd);
    return false;
  }
  size_t size = size_t(st.st_size);
  uint8_t* buf = static_cast<uint8_t*>(malloc(size));
  if (!buf) {
    close(fd);
    return false;
  }
  size_t done = 0;
  while (done < size) {
    ssize_t got = read(fd, buf + done, size - done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    done += size_t(got);
  }
  close(fd);
  if (done != size) {
    free(buf);
    return false;
  }
  *data = buf;
  *length = size;
  return true;
}

struct Work {
  napi_async_work work = nullptr;
  napi_deferred deferred = nullptr;
  napi_ref input = nullptr;    // the Buffer, kept alive while the threadpool reads it
  napi_ref scratch = nullptr;  // the caller's scratch array, kept alive while it is written
  std::string path;          // or a file to read there
  const uint8_t* bytes = nullptr;
  size_t length = 0;
  Result result;
};

void execute(napi_env, void* data) {
  Work* w = static_cast<Work*>(data);
  if (w->input) {
    decode_jpeg(w->bytes, w->length, &w->result);
    return;
  }
  uint8_t* file = nullptr;
  size_t length = 0;
  if (!read_file(w->path, &file, &length)) {
    w->result.fallback = "read";
    return;
  }
  decode_jpeg(file, length, &w->result);
  free(file);
}

void set_int(napi_env env, napi_value obj, const char* name, int v) {
  napi_value x;
  napi_create_int32(env, v, &x);
  napi_set_named_property(env, obj, name, x);
}

void set_string(napi_env env, napi_value obj, const char* name, const char* s) {
  napi_value x;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &x);
  napi_set_named_property(env, obj, name, x);
}

void complete(napi_env env, napi_status status, void* data) {
  Work* w = static_cast<Work*>(data);
  Result& r = w->result;
  napi_value obj;
  napi_create_object(env, &obj);
  if (status != napi_ok && !r.fallback) r.fallback = "error";
  if (r.fallback) {
    set_string(env, obj, "fallback", r.fallback);
    set_string(env, obj, "detail", r.detail);
  } else {
    // A copy into a Buffer V8 accounts for: 8,818 external buffers of 120 KB would not press
    // the garbage collector, and the memory would pile up until it ran.
    napi_value buf;
    void* copy = nullptr;
    size_t bytes = size_t(r.width) * r.height * r.channels;
    bool ok;
    if (r.in_scratch) {
      napi_value array, arraybuffer;
      napi_typedarray_type type;
      size_t length, offset;
      void* p;
      ok = napi_get_reference_value(env, w->scratch, &array) == napi_ok &&
           napi_get_typedarray_info(env, array, &type, &length, &p, &arraybuffer, &offset) == napi_ok &&
           napi_create_typedarray(env, napi_uint8_array, bytes, arraybuffer, offset, &buf) == napi_ok;
    } else {
      ok = napi_create_buffer_copy(env, bytes, r.pixels, &copy, &buf) == napi_ok;
    }
    if (ok) {
      napi_set_named_property(env, obj, "data", buf);
      set_int(env, obj, "width", r.width);
      set_int(env, obj, "height", r.height);
      set_int(env, obj, "channels", r.channels);
    } else {
      set_string(env, obj, "fallback", "error");
      set_string(env, obj, "detail", "cannot allocate the pixel buffer");
    }
  }
  if (!r.in_scratch) free(r.pixels);
  r.pixels = nullptr;
  napi_resolve_deferred(env, w->deferred, obj);
  if (w->input) napi_delete_reference(env, w->input);
  if (w->scratch) napi_delete_reference(env, w->scratch);
  napi_delete_async_work(env, w->work);
  delete w;
}

napi_value Decode(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 1) {
    napi_throw_type_error(env, nullptr, "utkface_jpeg: decode(pathOrBuffer, scratch?) needs one argument");
    return nullptr;
  }
  uint8_t* scratch = nullptr;
  size_t scratch_bytes = 0;
  if (argc >= 2) {
    napi_valuetype t;
    napi_typeof(env, argv[1], &t);
    bool is_typed = false;
    if (t != napi_undefined && t != napi_null) {
      napi_typedarray_type type;
      size_t length, offset;
      void* p;
      napi_value ab;
      if (napi_is_typedarray(env, argv[1], &is_typed) != napi_ok || !is_typed ||
          napi_get_typedarray_info(env, argv[1], &type, &length, &p, &ab, &offset) != napi_ok || type != napi_uint8_array) {
        napi_throw_type_error(env, nullptr, "utkface_jpeg: decode's scratch must be a Uint8Array");
        return nullptr;
      }
      scratch = static_cast<uint8_t*>(p);
      scratch_bytes = length;
    }
  }
  Work* w = new Work();
  if (scratch) {
    w->result.scratch = scratch;
    w->result.scratch_bytes = scratch_bytes;
    napi_create_reference(env, argv[1], 1, &w->scratch);
  }
  napi_valuetype type;
  napi_typeof(env, argv[0], &type);
  bool is_buffer = false;
  if (type == napi_string) {
    size_t n = 0;
    napi_get_value_string_utf8(env, argv[0], nullptr, 0, &n);
    w->path.resize(n + 1);
    napi_get_value_string_utf8(env, argv[0], &w->path[0], n + 1, &n);
    w->path.resize(n);
  } else if (napi_is_buffer(env, argv[0], &is_buffer) == napi_ok && is_buffer) {
    void* p = nullptr;
    napi_get_buffer_info(env, argv[0], &p, &w->length);
    w->bytes = static_cast<const uint8_t*>(p);
    napi_create_reference(env, argv[0], 1, &w->input);
  } else {
    if (w->scratch) napi_delete_reference(env, w->scratch);
    delete w;
    napi_throw_type_error(env, nullptr, "utkface_jpeg: decode expects a file path or a Buffer");
    return nullptr;
  }
  napi_value promise, name;
  napi_create_promise(env, &w->deferred, &promise);
  napi_create_string_utf8(env, "utkface_jpeg.decode", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, nullptr, name, execute, complete, w, &w->work);
  napi_queue_async_work(env, w->work);
  return promise;
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value obj;
  napi_create_object(env, &obj);
#ifdef LIBJPEG_TURBO_VERSION
#define UTKFACE_STR2(x) #x
#define UTKFACE_STR(x) UTKFACE_STR2(x)
  set_string(env, obj, "libjpeg", "libjpeg-turbo " UTKFACE_STR(LIBJPEG_TURBO_VERSION));
#else
  set_string(env, obj, "libjpeg", "libjpeg");
#endif
  set_int(env, obj, "jpegLibVersion", JPEG_LIB_VERSION);
  return obj;
}

napi_value Init(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"decode", nullptr, Decode, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
