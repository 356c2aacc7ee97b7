#pragma once
#include <stddef.h>
#include <stdint.h>

// A small C layer over libpng and libtiff for the Imaging module.
//
// libpng reports errors by longjmp, which Swift cannot survive, and libtiff's field accessors
// are C variadics Swift cannot call; both are handled here. Every function returns 0 on
// success and a nonzero code on failure, with a NUL-terminated message in `error`.
// Buffers handed out (pixels, encoded bytes, text) are malloc'ed and released by the
// matching free function.

#define CIC_ERROR_SIZE 512

enum {
    CIC_OK = 0,
    CIC_ERR_FORMAT = 1,      // the data is not a valid file of the format, or is corrupt
    CIC_ERR_UNSUPPORTED = 2, // valid, but a layout this reader does not handle
    CIC_ERR_MEMORY = 3,      // allocation failed or the image is implausibly large
    CIC_ERR_ARGUMENT = 4,    // a bad argument from the caller
    CIC_ERR_LIMIT = 5,       // the header declares more pixels than the caller allows (checked before allocating)
};

// ---- PNG ----

typedef struct {
    char *key;      // Latin-1 for tEXt/zTXt, UTF-8 (restricted to Latin-1 by the spec) for iTXt
    char *value;    // Latin-1 for tEXt/zTXt, UTF-8 for iTXt
    int is_utf8;    // 1 for iTXt
} cic_png_text;

typedef struct {
    int width;
    int height;
    int channels;          // 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA (palette and tRNS expanded)
    int bit_depth;         // 8 or 16: the sample size in `pixels`
    int source_bit_depth;  // the file's bit depth (1, 2, 4, 8 or 16)
    int source_color_type; // PNG colour type as stored (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA)
    uint8_t *pixels;       // interleaved rows; 16-bit samples are native-endian uint16
    size_t pixels_size;
    cic_png_text *texts;
    int text_count;
} cic_png_image;

// Refuses (CIC_ERR_LIMIT) an image whose header declares more than max_pixels pixels, before any pixel buffer exists.
int cic_png_decode(const uint8_t *data, size_t size, uint64_t max_pixels, cic_png_image *out, char *error);
void cic_png_image_free(cic_png_image *image);

/// Encodes `pixels` (interleaved, 8-bit bytes or native-endian uint16 samples) as PNG.
/// `keys`/`values` are `text_count` UTF-8 strings written as iTXt chunks.
int cic_png_encode(const void *pixels, int width, int height, int channels, int bit_depth,
                   const char *const *keys, const char *const *values, int text_count,
                   int compression_level, uint8_t **out, size_t *out_size, char *error);

// ---- TIFF ----

enum {
    CIC_SAMPLE_UINT = 1,
    CIC_SAMPLE_FLOAT = 3,
};

typedef struct {
    int width;
    int height;
    int channels;          // 1..4
    int bits_per_sample;   // 8, 16 or 32
    int sample_format;     // CIC_SAMPLE_UINT or CIC_SAMPLE_FLOAT
    int source_bits;       // bits per sample as stored in the file
    int used_rgba_fallback;// 1 when decoded through libtiff's RGBA interface (8-bit RGBA out)
    uint8_t *pixels;       // interleaved, native-endian samples
    size_t pixels_size;
} cic_tiff_image;

// Refuses (CIC_ERR_LIMIT) an image whose header declares more than max_pixels pixels, before any pixel buffer exists.
int cic_tiff_decode(const uint8_t *data, size_t size, uint64_t max_pixels, cic_tiff_image *out, char *error);
void cic_tiff_image_free(cic_tiff_image *image);

/// Encodes interleaved samples (8/16-bit unsigned or 32-bit float, native-endian) as a
/// Deflate-compressed TIFF with a horizontal (or floating-point) predictor.
int cic_tiff_encode(const void *pixels, int width, int height, int channels, int bits_per_sample,
                    int sample_format, uint8_t **out, size_t *out_size, char *error);

void cic_free(void *p);
