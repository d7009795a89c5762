#ifndef CATTEND_IMAGE_CODECS_H
#define CATTEND_IMAGE_CODECS_H
// PNG (libpng) and JPEG (libjpeg) to and from interleaved pixels in memory. libpng and libjpeg report errors by
// longjmp, which Swift cannot catch, so these C wrappers own the setjmp and turn every failure into a return code
// and a message. Decoders read the header first and refuse a size over max_pixels before allocating anything.

#include <stddef.h>

/// A decoded image: rows of width * channels samples, 8-bit (bit_depth 8, in pixels8) or 16-bit (in pixels16,
/// native endianness). channels: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA. Free with attend_image_free.
typedef struct {
    long width, height;
    int channels, bit_depth;
    unsigned char *pixels8;
    unsigned short *pixels16;
    int progressive, interlaced;
    char error[200];
} attend_image;

/// Image header facts without decoding: 0 on success.
int attend_png_decode(const unsigned char *data, size_t size, long max_pixels, attend_image *out);
int attend_jpeg_decode(const unsigned char *data, size_t size, long max_pixels, attend_image *out);
void attend_image_free(attend_image *image);

/// Encoders into a malloc'd buffer (*out, *out_size; free with attend_buffer_free). 0 on success, else a message in error.
int attend_png_encode(const unsigned char *pixels, long width, long height, int channels, int bit_depth,
                      unsigned char **out, size_t *out_size, char *error, size_t error_size);
int attend_jpeg_encode(const unsigned char *pixels, long width, long height, int channels, int quality, int progressive,
                       unsigned char **out, size_t *out_size, char *error, size_t error_size);
void attend_buffer_free(unsigned char *buffer);

#endif
