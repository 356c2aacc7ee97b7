// PNG and TIFF coding for the Imaging module: the parts that must be C.
// libpng reports errors with longjmp (caught here with setjmp, which Swift cannot do) and
// libtiff's field accessors are C variadics; every entry point returns an error code and
// a message instead.

#include "CImageCodecs.h"

#include <png.h>
#include <tiffio.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Refuse to allocate pixel buffers larger than this (a corrupt header can claim anything).
#define CIC_MAX_PIXEL_BYTES ((size_t)1 << 33)

static int is_little_endian(void) {
    const uint16_t probe = 1;
    return *(const uint8_t *)&probe == 1;
}

static void set_error(char *error, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error, CIC_ERROR_SIZE, fmt, ap);
    va_end(ap);
}

void cic_free(void *p) { free(p); }

// Multiplies a*b*c*d, returning 0 on overflow or if the result exceeds the pixel limit.
static size_t checked_size(size_t a, size_t b, size_t c, size_t d) {
    if (a == 0 || b == 0 || c == 0 || d == 0) return 0;
    size_t r = a;
    if (r > CIC_MAX_PIXEL_BYTES / b) return 0;
    r *= b;
    if (r > CIC_MAX_PIXEL_BYTES / c) return 0;
    r *= c;
    if (r > CIC_MAX_PIXEL_BYTES / d) return 0;
    r *= d;
    return r;
}

// ============================================================================ PNG

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t pos;
} png_mem_reader;

typedef struct {
    uint8_t *data;
    size_t size;
    size_t cap;
} mem_buffer;

typedef struct {
    char *error;
    int code; // CIC_ERR_* to return when the longjmp lands
} png_err_ctx;

static void cic_png_error_fn(png_structp png, png_const_charp msg) {
    png_err_ctx *ctx = (png_err_ctx *)png_get_error_ptr(png);
    if (ctx && ctx->error && ctx->error[0] == 0) set_error(ctx->error, "%s", msg);
    png_longjmp(png, 1);
}

static void cic_png_warning_fn(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg; // warnings (e.g. a damaged ancillary chunk that is skipped) are not errors
}

static void cic_png_read_fn(png_structp png, png_bytep dst, size_t len) {
    png_mem_reader *r = (png_mem_reader *)png_get_io_ptr(png);
    if (r->size - r->pos < len) png_error(png, "unexpected end of data: the PNG file is truncated");
    memcpy(dst, r->data + r->pos, len);
    r->pos += len;
}

static int mem_buffer_append(mem_buffer *b, const void *src, size_t len) {
    if (b->cap - b->size < len) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->size < len) {
            if (cap > ((size_t)-1) / 2) return 0;
            cap *= 2;
        }
        uint8_t *p = (uint8_t *)realloc(b->data, cap);
        if (!p) return 0;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->size, src, len);
    b->size += len;
    return 1;
}

static void cic_png_write_fn(png_structp png, png_bytep src, size_t len) {
    mem_buffer *b = (mem_buffer *)png_get_io_ptr(png);
    if (!mem_buffer_append(b, src, len)) png_error(png, "out of memory while encoding PNG");
}

static void cic_png_flush_fn(png_structp png) { (void)png; }

static char *dup_bytes(const char *s, size_t len) {
    char *p = (char *)malloc(len + 1);
    if (!p) return NULL;
    if (len) memcpy(p, s, len);
    p[len] = 0;
    return p;
}

void cic_png_image_free(cic_png_image *image) {
    if (!image) return;
    free(image->pixels);
    image->pixels = NULL;
    if (image->texts) {
        for (int i = 0; i < image->text_count; i++) {
            free(image->texts[i].key);
            free(image->texts[i].value);
        }
        free(image->texts);
    }
    image->texts = NULL;
    image->text_count = 0;
}

int cic_png_decode(const uint8_t *data, size_t size, uint64_t max_pixels, cic_png_image *out, char *error) {
    memset(out, 0, sizeof *out);
    error[0] = 0;
    if (size < 8 || png_sig_cmp((png_const_bytep)data, 0, 8) != 0) {
        set_error(error, "not a PNG file (the 8-byte PNG signature is missing)");
        return CIC_ERR_FORMAT;
    }
    png_err_ctx ctx = {error, CIC_ERR_FORMAT};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, cic_png_error_fn, cic_png_warning_fn);
    if (!png) {
        set_error(error, "out of memory (png_create_read_struct)");
        return CIC_ERR_MEMORY;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        set_error(error, "out of memory (png_create_info_struct)");
        return CIC_ERR_MEMORY;
    }
    png_mem_reader reader = {data, size, 0};
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;

    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        if (error[0] == 0) set_error(error, "corrupt PNG data");
        return ctx.code;
    }

    png_set_read_fn(png, &reader, cic_png_read_fn);
    png_read_info(png, info);
    {
        const uint64_t declared = (uint64_t)png_get_image_width(png, info) * png_get_image_height(png, info);
        if (declared > max_pixels) {
            set_error(error, "PNG declares %ux%u = %llu pixels, more than the limit of %llu",
                      (unsigned)png_get_image_width(png, info), (unsigned)png_get_image_height(png, info),
                      (unsigned long long)declared, (unsigned long long)max_pixels);
            ctx.code = CIC_ERR_LIMIT;
            png_error(png, error);
        }
    }

    const int color_type = png_get_color_type(png, info);
    const int bit_depth = png_get_bit_depth(png, info);
    out->source_color_type = color_type;
    out->source_bit_depth = bit_depth;

    png_set_expand(png); // palette -> RGB, gray < 8 bits -> 8 bits, tRNS -> alpha
    if (bit_depth == 16 && is_little_endian()) png_set_swap(png);
    (void)png_set_interlace_handling(png);
    png_read_update_info(png, info);

    const png_uint_32 width = png_get_image_width(png, info);
    const png_uint_32 height = png_get_image_height(png, info);
    const int channels = png_get_channels(png, info);
    const int depth = png_get_bit_depth(png, info);
    const size_t rowbytes = png_get_rowbytes(png, info);
    if (channels < 1 || channels > 4 || (depth != 8 && depth != 16)) {
        ctx.code = CIC_ERR_UNSUPPORTED;
        png_error(png, "unsupported PNG layout after expansion");
    }
    const size_t total = checked_size(rowbytes, height, 1, 1);
    if (total == 0 || rowbytes != (size_t)width * channels * (depth / 8)) {
        ctx.code = CIC_ERR_MEMORY;
        png_error(png, "PNG image dimensions are too large");
    }
    pixels = (uint8_t *)malloc(total);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
    if (!pixels || !rows) {
        ctx.code = CIC_ERR_MEMORY;
        png_error(png, "out of memory for PNG pixels");
    }
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + (size_t)y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, info); // also collects text chunks that follow the image data

    png_textp texts = NULL;
    int count = 0;
    png_get_text(png, info, &texts, &count);
    if (count > 0) {
        out->texts = (cic_png_text *)calloc((size_t)count, sizeof(cic_png_text));
        if (out->texts) {
            out->text_count = count;
            for (int i = 0; i < count; i++) {
                const int itxt = texts[i].compression == PNG_ITXT_COMPRESSION_NONE ||
                                 texts[i].compression == PNG_ITXT_COMPRESSION_zTXt;
                size_t len = itxt ? texts[i].itxt_length : texts[i].text_length;
                const char *src = texts[i].text ? texts[i].text : "";
                if (!texts[i].text) len = 0;
                out->texts[i].key = dup_bytes(texts[i].key, strlen(texts[i].key));
                out->texts[i].value = dup_bytes(src, len);
                out->texts[i].is_utf8 = itxt;
            }
        }
    }

    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    out->width = (int)width;
    out->height = (int)height;
    out->channels = channels;
    out->bit_depth = depth;
    out->pixels = pixels;
    out->pixels_size = total;
    if (count > 0 && !out->texts) {
        cic_png_image_free(out);
        set_error(error, "out of memory for PNG text chunks");
        return CIC_ERR_MEMORY;
    }
    for (int i = 0; i < out->text_count; i++) {
        if (!out->texts[i].key || !out->texts[i].value) {
            cic_png_image_free(out);
            set_error(error, "out of memory for PNG text chunks");
            return CIC_ERR_MEMORY;
        }
    }
    return CIC_OK;
}

int cic_png_encode(const void *pixels, int width, int height, int channels, int bit_depth,
                   const char *const *keys, const char *const *values, int text_count,
                   int compression_level, uint8_t **out, size_t *out_size, char *error) {
    *out = NULL;
    *out_size = 0;
    error[0] = 0;
    if (width <= 0 || height <= 0 || channels < 1 || channels > 4 || (bit_depth != 8 && bit_depth != 16) ||
        text_count < 0) {
        set_error(error, "invalid PNG encode arguments (%dx%d, %d channels, %d bits)", width, height, channels, bit_depth);
        return CIC_ERR_ARGUMENT;
    }
    static const int color_types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                       PNG_COLOR_TYPE_RGB_ALPHA};
    const size_t rowbytes = (size_t)width * (size_t)channels * (size_t)(bit_depth / 8);

    png_err_ctx ctx = {error, CIC_ERR_FORMAT};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, cic_png_error_fn, cic_png_warning_fn);
    if (!png) {
        set_error(error, "out of memory (png_create_write_struct)");
        return CIC_ERR_MEMORY;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        set_error(error, "out of memory (png_create_info_struct)");
        return CIC_ERR_MEMORY;
    }
    mem_buffer buffer = {NULL, 0, 0};
    png_bytep *volatile rows = NULL;
    png_textp volatile texts = NULL;

    if (setjmp(png_jmpbuf(png))) {
        free(buffer.data);
        free(rows);
        free(texts);
        png_destroy_write_struct(&png, &info);
        if (error[0] == 0) set_error(error, "PNG encoding failed");
        return ctx.code;
    }

    png_set_write_fn(png, &buffer, cic_png_write_fn, cic_png_flush_fn);
    if (compression_level >= 0 && compression_level <= 9) png_set_compression_level(png, compression_level);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, bit_depth, color_types[channels],
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (text_count > 0) {
        texts = (png_textp)calloc((size_t)text_count, sizeof(png_text));
        if (!texts) {
            ctx.code = CIC_ERR_MEMORY;
            png_error(png, "out of memory for PNG text chunks");
        }
        for (int i = 0; i < text_count; i++) {
            const size_t len = strlen(values[i]);
            texts[i].compression = len > 1024 ? PNG_ITXT_COMPRESSION_zTXt : PNG_ITXT_COMPRESSION_NONE;
            texts[i].key = (png_charp)keys[i];
            texts[i].text = (png_charp)values[i];
            texts[i].itxt_length = len;
            texts[i].lang = (png_charp) "";
            texts[i].lang_key = (png_charp) "";
        }
        png_set_text(png, info, texts, text_count);
    }
    png_write_info(png, info);
    if (bit_depth == 16 && is_little_endian()) png_set_swap(png);

    rows = (png_bytep *)malloc(sizeof(png_bytep) * (size_t)height);
    if (!rows) {
        ctx.code = CIC_ERR_MEMORY;
        png_error(png, "out of memory for PNG rows");
    }
    for (int y = 0; y < height; y++) rows[y] = (png_bytep)pixels + (size_t)y * rowbytes;
    png_write_image(png, rows);
    png_write_end(png, NULL);

    free(rows);
    free(texts);
    png_destroy_write_struct(&png, &info);
    *out = buffer.data;
    *out_size = buffer.size;
    return CIC_OK;
}

// ============================================================================ TIFF

typedef struct {
    uint8_t *data;
    size_t size;
    size_t cap;
    size_t pos;
    int writable;
} tiff_mem;

typedef struct {
    char *error;
} tiff_err_ctx;

static int cic_tiff_error_handler(TIFF *tif, void *user_data, const char *module, const char *fmt, va_list ap) {
    (void)tif;
    tiff_err_ctx *ctx = (tiff_err_ctx *)user_data;
    if (ctx && ctx->error && ctx->error[0] == 0) {
        char msg[CIC_ERROR_SIZE];
        vsnprintf(msg, sizeof msg, fmt, ap);
        if (module && module[0]) set_error(ctx->error, "%s (%s)", msg, module);
        else set_error(ctx->error, "%s", msg);
    }
    return 1; // handled: nothing goes to stderr
}

static int cic_tiff_warning_handler(TIFF *tif, void *user_data, const char *module, const char *fmt, va_list ap) {
    (void)tif;
    (void)user_data;
    (void)module;
    (void)fmt;
    (void)ap;
    return 1; // warnings (unknown tags and the like) are dropped
}

static tmsize_t tiff_mem_read(thandle_t h, void *buf, tmsize_t n) {
    tiff_mem *m = (tiff_mem *)h;
    if (n <= 0 || m->pos >= m->size) return 0;
    size_t avail = m->size - m->pos;
    size_t k = (size_t)n < avail ? (size_t)n : avail;
    memcpy(buf, m->data + m->pos, k);
    m->pos += k;
    return (tmsize_t)k;
}

static tmsize_t tiff_mem_write(thandle_t h, void *buf, tmsize_t n) {
    tiff_mem *m = (tiff_mem *)h;
    if (!m->writable || n < 0) return -1;
    size_t end = m->pos + (size_t)n;
    if (end < m->pos) return -1;
    if (end > m->cap) {
        size_t cap = m->cap ? m->cap : 65536;
        while (cap < end) {
            if (cap > ((size_t)-1) / 2) return -1;
            cap *= 2;
        }
        uint8_t *p = (uint8_t *)realloc(m->data, cap);
        if (!p) return -1;
        m->data = p;
        m->cap = cap;
    }
    if (m->pos > m->size) memset(m->data + m->size, 0, m->pos - m->size);
    memcpy(m->data + m->pos, buf, (size_t)n);
    m->pos = end;
    if (end > m->size) m->size = end;
    return n;
}

static toff_t tiff_mem_seek(thandle_t h, toff_t off, int whence) {
    tiff_mem *m = (tiff_mem *)h;
    int64_t base;
    switch (whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = (int64_t)m->pos; break;
    case SEEK_END: base = (int64_t)m->size; break;
    default: return (toff_t)-1;
    }
    int64_t p = base + (int64_t)off;
    if (p < 0) return (toff_t)-1;
    m->pos = (size_t)p;
    return (toff_t)p;
}

static int tiff_mem_close(thandle_t h) {
    (void)h;
    return 0;
}

static toff_t tiff_mem_size(thandle_t h) { return (toff_t)((tiff_mem *)h)->size; }

static int tiff_mem_map(thandle_t h, void **base, toff_t *size) {
    (void)h;
    (void)base;
    (void)size;
    return 0;
}

static void tiff_mem_unmap(thandle_t h, void *base, toff_t size) {
    (void)h;
    (void)base;
    (void)size;
}

static TIFF *tiff_open_mem(tiff_mem *m, const char *mode, tiff_err_ctx *ctx) {
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (!opts) return NULL;
    TIFFOpenOptionsSetErrorHandlerExtR(opts, cic_tiff_error_handler, ctx);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, cic_tiff_warning_handler, ctx);
    TIFF *tif = TIFFClientOpenExt("memory", mode, (thandle_t)m, tiff_mem_read, tiff_mem_write, tiff_mem_seek,
                                  tiff_mem_close, tiff_mem_size, tiff_mem_map, tiff_mem_unmap, opts);
    TIFFOpenOptionsFree(opts);
    return tif;
}

void cic_tiff_image_free(cic_tiff_image *image) {
    if (!image) return;
    free(image->pixels);
    image->pixels = NULL;
}

// Copies a block of `rows` x `cols` pixels (each `in_spp` samples of `bps_bytes`) from `src`
// (row stride `src_stride` bytes) into the interleaved output at (x0, y0), sample `plane`
// when `in_spp` is 1 and the file is planar-separate.
static void copy_block(uint8_t *dst, int width, int spp, int bytes, const uint8_t *src, size_t src_stride,
                       int x0, int y0, int cols, int rows, int separate, int plane) {
    const size_t px_out = (size_t)spp * bytes;
    for (int r = 0; r < rows; r++) {
        const uint8_t *s = src + (size_t)r * src_stride;
        uint8_t *d = dst + ((size_t)(y0 + r) * width + x0) * px_out;
        if (!separate) {
            memcpy(d, s, (size_t)cols * px_out);
        } else {
            d += (size_t)plane * bytes;
            for (int c = 0; c < cols; c++) memcpy(d + (size_t)c * px_out, s + (size_t)c * bytes, (size_t)bytes);
        }
    }
}

int cic_tiff_decode(const uint8_t *data, size_t size, uint64_t max_pixels, cic_tiff_image *out, char *error) {
    memset(out, 0, sizeof *out);
    error[0] = 0;
    if (size < 8 || !((data[0] == 'I' && data[1] == 'I') || (data[0] == 'M' && data[1] == 'M'))) {
        set_error(error, "not a TIFF file (no II/MM byte-order mark)");
        return CIC_ERR_FORMAT;
    }
    tiff_mem mem = {(uint8_t *)data, size, size, 0, 0};
    tiff_err_ctx ctx = {error};
    TIFF *tif = tiff_open_mem(&mem, "rm", &ctx);
    if (!tif) {
        if (error[0] == 0) set_error(error, "cannot open TIFF data");
        return CIC_ERR_FORMAT;
    }
    int code = CIC_OK;
    uint8_t *pixels = NULL;
    uint8_t *buf = NULL;

    uint32_t width = 0, height = 0;
    uint16_t spp = 1, bps = 1, fmt = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG, photometric = 0;
    if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &width) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &height)) {
        if (error[0] == 0) set_error(error, "TIFF has no image width/length");
        code = CIC_ERR_FORMAT;
        goto done;
    }
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &fmt);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric))
        photometric = spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
    out->source_bits = bps;
    if (width == 0 || height == 0) {
        set_error(error, "TIFF image is empty (%ux%u)", width, height);
        code = CIC_ERR_FORMAT;
        goto done;
    }
    if ((uint64_t)width * height > max_pixels) {
        set_error(error, "TIFF declares %ux%u = %llu pixels, more than the limit of %llu", width, height,
                  (unsigned long long)((uint64_t)width * height), (unsigned long long)max_pixels);
        code = CIC_ERR_LIMIT;
        goto done;
    }

    const int direct_depth = ((bps == 8 || bps == 16) && fmt == SAMPLEFORMAT_UINT) ||
                             (bps == 32 && fmt == SAMPLEFORMAT_IEEEFP);
    const int direct_photo = photometric == PHOTOMETRIC_MINISBLACK || photometric == PHOTOMETRIC_MINISWHITE ||
                             (photometric == PHOTOMETRIC_RGB && spp >= 3);
    if (direct_depth && direct_photo && spp >= 1 && spp <= 4) {
        const int bytes = bps / 8;
        const size_t total = checked_size(width, height, spp, (size_t)bytes);
        if (total == 0) {
            set_error(error, "TIFF image is too large (%ux%u, %u samples)", width, height, spp);
            code = CIC_ERR_MEMORY;
            goto done;
        }
        pixels = (uint8_t *)malloc(total);
        if (!pixels) {
            set_error(error, "out of memory for TIFF pixels");
            code = CIC_ERR_MEMORY;
            goto done;
        }
        const int separate = planar == PLANARCONFIG_SEPARATE && spp > 1;
        const int planes = separate ? spp : 1;
        const int in_spp = separate ? 1 : spp;
        if (TIFFIsTiled(tif)) {
            uint32_t tw = 0, th = 0;
            TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
            TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
            tmsize_t tsize = TIFFTileSize(tif);
            if (tw == 0 || th == 0 || tsize <= 0 || (size_t)tsize < checked_size(tw, th, in_spp, bytes)) {
                if (error[0] == 0) set_error(error, "TIFF has an invalid tile size");
                code = CIC_ERR_FORMAT;
                goto done;
            }
            buf = (uint8_t *)malloc((size_t)tsize);
            if (!buf) {
                set_error(error, "out of memory for a TIFF tile");
                code = CIC_ERR_MEMORY;
                goto done;
            }
            for (int p = 0; p < planes; p++)
                for (uint32_t y = 0; y < height; y += th)
                    for (uint32_t x = 0; x < width; x += tw) {
                        if (TIFFReadTile(tif, buf, x, y, 0, (uint16_t)p) < 0) {
                            if (error[0] == 0) set_error(error, "cannot read TIFF tile at %u,%u", x, y);
                            code = CIC_ERR_FORMAT;
                            goto done;
                        }
                        int cols = (int)(width - x < tw ? width - x : tw);
                        int rows = (int)(height - y < th ? height - y : th);
                        copy_block(pixels, (int)width, spp, bytes, buf, (size_t)tw * in_spp * bytes, (int)x, (int)y,
                                   cols, rows, separate, p);
                    }
        } else {
            uint32_t rps = height;
            TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps);
            if (rps == 0 || rps > height) rps = height;
            tmsize_t ssize = TIFFStripSize(tif);
            const size_t need = checked_size(width, rps, in_spp, bytes);
            if (ssize <= 0 || need == 0 || (size_t)ssize < need) {
                if (error[0] == 0) set_error(error, "TIFF has an invalid strip size");
                code = CIC_ERR_FORMAT;
                goto done;
            }
            buf = (uint8_t *)malloc((size_t)ssize);
            if (!buf) {
                set_error(error, "out of memory for a TIFF strip");
                code = CIC_ERR_MEMORY;
                goto done;
            }
            for (int p = 0; p < planes; p++)
                for (uint32_t y = 0; y < height; y += rps) {
                    uint32_t strip = TIFFComputeStrip(tif, y, (uint16_t)p);
                    int rows = (int)(height - y < rps ? height - y : rps);
                    tmsize_t want = (tmsize_t)((size_t)rows * width * in_spp * bytes);
                    tmsize_t got = TIFFReadEncodedStrip(tif, strip, buf, want);
                    if (got < want) {
                        if (error[0] == 0) set_error(error, "cannot read TIFF strip %u (data truncated or corrupt)", strip);
                        code = CIC_ERR_FORMAT;
                        goto done;
                    }
                    copy_block(pixels, (int)width, spp, bytes, buf, (size_t)width * in_spp * bytes, 0, (int)y,
                               (int)width, rows, separate, p);
                }
        }
        if (photometric == PHOTOMETRIC_MINISWHITE) {
            const size_t n = (size_t)width * height;
            for (size_t i = 0; i < n; i++) {
                if (bytes == 1) {
                    uint8_t *s = pixels + i * spp;
                    *s = (uint8_t)(255 - *s);
                } else if (bytes == 2) {
                    uint16_t *s = (uint16_t *)pixels + i * spp;
                    *s = (uint16_t)(65535 - *s);
                } else {
                    float *s = (float *)pixels + i * spp;
                    *s = 1.0f - *s;
                }
            }
        }
        out->width = (int)width;
        out->height = (int)height;
        out->channels = spp;
        out->bits_per_sample = bps;
        out->sample_format = fmt == SAMPLEFORMAT_IEEEFP ? CIC_SAMPLE_FLOAT : CIC_SAMPLE_UINT;
        out->pixels = pixels;
        out->pixels_size = total;
        pixels = NULL;
    } else {
        // Everything else libtiff can render (palette, bilevel, YCbCr/JPEG, CMYK, odd bit depths)
        // goes through its RGBA interface as 8-bit.
        char emsg[1024];
        if (!TIFFRGBAImageOK(tif, emsg)) {
            set_error(error, "unsupported TIFF layout (%u bits, sample format %u, photometric %u, %u samples): %s", bps,
                      fmt, photometric, spp, emsg);
            code = CIC_ERR_UNSUPPORTED;
            goto done;
        }
        const size_t total = checked_size(width, height, 4, 1);
        if (total == 0) {
            set_error(error, "TIFF image is too large (%ux%u)", width, height);
            code = CIC_ERR_MEMORY;
            goto done;
        }
        uint32_t *raster = (uint32_t *)malloc(total);
        if (!raster) {
            set_error(error, "out of memory for TIFF pixels");
            code = CIC_ERR_MEMORY;
            goto done;
        }
        pixels = (uint8_t *)raster;
        if (!TIFFReadRGBAImageOriented(tif, width, height, raster, ORIENTATION_TOPLEFT, 0)) {
            if (error[0] == 0) set_error(error, "cannot decode TIFF image");
            code = CIC_ERR_FORMAT;
            goto done;
        }
        uint16_t extra = 0;
        uint16_t *extra_types = NULL;
        TIFFGetFieldDefaulted(tif, TIFFTAG_EXTRASAMPLES, &extra, &extra_types);
        const int channels = extra > 0 ? 4 : 3;
        const size_t n = (size_t)width * height;
        for (size_t i = 0; i < n; i++) {
            const uint32_t v = raster[i];
            uint8_t *d = pixels + i * channels;
            const uint8_t r = (uint8_t)TIFFGetR(v), g = (uint8_t)TIFFGetG(v), b = (uint8_t)TIFFGetB(v),
                          a = (uint8_t)TIFFGetA(v);
            d[0] = r;
            d[1] = g;
            d[2] = b;
            if (channels == 4) d[3] = a;
        }
        out->width = (int)width;
        out->height = (int)height;
        out->channels = channels;
        out->bits_per_sample = 8;
        out->sample_format = CIC_SAMPLE_UINT;
        out->used_rgba_fallback = 1;
        out->pixels = pixels;
        out->pixels_size = n * channels;
        pixels = NULL;
    }

done:
    free(buf);
    free(pixels);
    TIFFClose(tif);
    return code;
}

int cic_tiff_encode(const void *pixels, int width, int height, int channels, int bits_per_sample, int sample_format,
                    uint8_t **out, size_t *out_size, char *error) {
    *out = NULL;
    *out_size = 0;
    error[0] = 0;
    const int ok_format = (sample_format == CIC_SAMPLE_UINT && (bits_per_sample == 8 || bits_per_sample == 16)) ||
                          (sample_format == CIC_SAMPLE_FLOAT && bits_per_sample == 32);
    if (width <= 0 || height <= 0 || channels < 1 || channels > 4 || !ok_format) {
        set_error(error, "invalid TIFF encode arguments (%dx%d, %d channels, %d bits, format %d)", width, height,
                  channels, bits_per_sample, sample_format);
        return CIC_ERR_ARGUMENT;
    }
    tiff_mem mem = {NULL, 0, 0, 0, 1};
    tiff_err_ctx ctx = {error};
    TIFF *tif = tiff_open_mem(&mem, "w", &ctx);
    if (!tif) {
        free(mem.data);
        if (error[0] == 0) set_error(error, "cannot create TIFF encoder");
        return CIC_ERR_MEMORY;
    }
    const size_t rowbytes = (size_t)width * channels * (bits_per_sample / 8);
    uint8_t *row = (uint8_t *)malloc(rowbytes);
    int code = CIC_OK;
    if (!row) {
        set_error(error, "out of memory for a TIFF row");
        code = CIC_ERR_MEMORY;
        goto fail;
    }
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, (uint32_t)width);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, (uint32_t)height);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)channels);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, (uint16_t)bits_per_sample);
    TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT,
                 (uint16_t)(sample_format == CIC_SAMPLE_FLOAT ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT));
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, (uint16_t)(channels >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK));
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, (uint16_t)PLANARCONFIG_CONTIG);
    TIFFSetField(tif, TIFFTAG_ORIENTATION, (uint16_t)ORIENTATION_TOPLEFT);
    if (channels == 2 || channels == 4) {
        uint16_t extra = EXTRASAMPLE_UNASSALPHA;
        TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, (uint16_t)1, &extra);
    }
    TIFFSetField(tif, TIFFTAG_COMPRESSION, (uint16_t)COMPRESSION_ADOBE_DEFLATE);
    TIFFSetField(tif, TIFFTAG_PREDICTOR,
                 (uint16_t)(sample_format == CIC_SAMPLE_FLOAT ? PREDICTOR_FLOATINGPOINT : PREDICTOR_HORIZONTAL));
    TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, TIFFDefaultStripSize(tif, 0));
    for (int y = 0; y < height; y++) {
        // The predictor rewrites the row in place, so hand libtiff a copy.
        memcpy(row, (const uint8_t *)pixels + (size_t)y * rowbytes, rowbytes);
        if (TIFFWriteScanline(tif, row, (uint32_t)y, 0) < 0) {
            if (error[0] == 0) set_error(error, "cannot write TIFF row %d", y);
            code = CIC_ERR_FORMAT;
            goto fail;
        }
    }
    if (!TIFFFlush(tif)) {
        if (error[0] == 0) set_error(error, "cannot finish TIFF data");
        code = CIC_ERR_FORMAT;
        goto fail;
    }
    TIFFClose(tif);
    free(row);
    if (error[0] != 0) {
        free(mem.data);
        return CIC_ERR_FORMAT;
    }
    *out = mem.data;
    *out_size = mem.size;
    return CIC_OK;

fail:
    TIFFClose(tif);
    free(row);
    free(mem.data);
    return code;
}
