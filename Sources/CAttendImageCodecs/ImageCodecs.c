// libpng and libjpeg behind setjmp: every error becomes a return code and a message, never a longjmp into Swift.

#include "CAttendImageCodecs.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

void attend_image_free(attend_image *image) {
    free(image->pixels8);
    free(image->pixels16);
    image->pixels8 = NULL;
    image->pixels16 = NULL;
}

void attend_buffer_free(unsigned char *buffer) { free(buffer); }

// MARK: PNG

typedef struct {
    const unsigned char *data;
    size_t size, at;
    char *error;
} png_source;

static void png_read_memory(png_structp png, png_bytep out, png_size_t n) {
    png_source *src = (png_source *)png_get_io_ptr(png);
    if (n > src->size - src->at) png_error(png, "truncated file");
    memcpy(out, src->data + src->at, n);
    src->at += n;
}

static void png_error_to_buffer(png_structp png, png_const_charp message) {
    png_source *src = (png_source *)png_get_error_ptr(png);
    snprintf(src->error, 200, "%s", message);
    png_longjmp(png, 1);
}

static void png_warning_ignored(png_structp png, png_const_charp message) { (void)png; (void)message; }

int attend_png_decode(const unsigned char *data, size_t size, long max_pixels, attend_image *out) {
    memset(out, 0, sizeof(*out));
    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        snprintf(out->error, sizeof out->error, "not a PNG file (no PNG signature)");
        return 1;
    }
    png_source src = {data, size, 0, out->error};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_error_to_buffer, png_warning_ignored);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_read_struct(&png, &info, NULL);
        snprintf(out->error, sizeof out->error, "libpng could not start");
        return 1;
    }
    // Volatile: these change after setjmp and are read after a longjmp back to it.
    unsigned char *volatile pixels8 = NULL;
    unsigned short *volatile pixels16 = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(pixels8); free(pixels16); free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return 1;
    }
    png_set_read_fn(png, &src, png_read_memory);
    // libpng's own limits too, so a huge IHDR fails inside libpng as well as here.
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_set_chunk_malloc_max(png, 64u << 20);
    png_read_info(png, info);
    png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    int bit_depth = png_get_bit_depth(png, info), color = png_get_color_type(png, info);
    out->interlaced = png_get_interlace_type(png, info) != PNG_INTERLACE_NONE;
    if (width == 0 || height == 0 || (double)width * (double)height > (double)max_pixels) {
        snprintf(out->error, sizeof out->error, "the header declares %u x %u pixels, over the limit of %ld", width, height, max_pixels);
        png_destroy_read_struct(&png, &info, NULL);
        return 2;
    }
    // Everything becomes 8- or 16-bit grey, grey + alpha, RGB or RGBA.
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (bit_depth == 16) png_set_swap(png);  // PNG is big-endian; the samples are read as native shorts
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info), depth = png_get_bit_depth(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (rowbytes != (size_t)width * channels * (depth / 8)) png_error(png, "unexpected row layout after transforms");
    size_t total = rowbytes * height;
    unsigned char *buffer = malloc(total ? total : 1);
    if (!buffer) png_error(png, "out of memory");
    if (depth == 16) pixels16 = (unsigned short *)buffer; else pixels8 = buffer;
    rows = malloc(sizeof(png_bytep) * height);
    if (!rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < height; y++) rows[y] = buffer + y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    out->width = width;
    out->height = height;
    out->channels = channels;
    out->bit_depth = depth;
    out->pixels8 = pixels8;
    out->pixels16 = pixels16;
    return 0;
}

typedef struct {
    unsigned char *data;
    size_t size, capacity;
    int failed;
} png_sink;

static void png_write_memory(png_structp png, png_bytep in, png_size_t n) {
    png_sink *sink = (png_sink *)png_get_io_ptr(png);
    if (sink->size + n > sink->capacity) {
        size_t capacity = sink->capacity * 2 + n + 4096;
        unsigned char *grown = realloc(sink->data, capacity);
        if (!grown) png_error(png, "out of memory");
        sink->data = grown;
        sink->capacity = capacity;
    }
    memcpy(sink->data + sink->size, in, n);
    sink->size += n;
}

static void png_flush_nothing(png_structp png) { (void)png; }

typedef struct { char *error; size_t size; } error_buffer;

static void png_write_error(png_structp png, png_const_charp message) {
    error_buffer *e = (error_buffer *)png_get_error_ptr(png);
    snprintf(e->error, e->size, "%s", message);
    png_longjmp(png, 1);
}

int attend_png_encode(const unsigned char *pixels, long width, long height, int channels, int bit_depth,
                      unsigned char **out, size_t *out_size, char *error, size_t error_size) {
    static const int types[] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGBA};
    if (channels < 1 || channels > 4 || (bit_depth != 8 && bit_depth != 16) || width <= 0 || height <= 0) {
        snprintf(error, error_size, "cannot write %ld x %ld pixels of %d channels at %d bits", width, height, channels, bit_depth);
        return 1;
    }
    error_buffer e = {error, error_size};
    png_sink sink = {NULL, 0, 0, 0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &e, png_write_error, png_warning_ignored);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        snprintf(error, error_size, "libpng could not start");
        return 1;
    }
    if (setjmp(png_jmpbuf(png))) {
        free(sink.data);
        png_destroy_write_struct(&png, &info);
        return 1;
    }
    png_set_write_fn(png, &sink, png_write_memory, png_flush_nothing);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, bit_depth, types[channels], PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    if (bit_depth == 16) png_set_swap(png);
    size_t rowbytes = (size_t)width * channels * (bit_depth / 8);
    for (long y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(pixels + y * rowbytes));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    *out = sink.data;
    *out_size = sink.size;
    return 0;
}

// MARK: JPEG

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char *error;
    size_t error_size;
} jpeg_error_handler;

static void jpeg_error_exit(j_common_ptr cinfo) {
    jpeg_error_handler *handler = (jpeg_error_handler *)cinfo->err;
    char message[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, message);
    snprintf(handler->error, handler->error_size, "%s", message);
    longjmp(handler->jump, 1);
}

/// Warnings are ignored (many real files carry a few stray bytes), except running out of data: libjpeg would pad
/// the rest of a truncated file with grey and call it an image.
static void jpeg_quiet(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        jpeg_error_handler *handler = (jpeg_error_handler *)cinfo->err;
        snprintf(handler->error, handler->error_size, "truncated (premature end of data)");
        longjmp(handler->jump, 1);
    }
}

int attend_jpeg_decode(const unsigned char *data, size_t size, long max_pixels, attend_image *out) {
    memset(out, 0, sizeof(*out));
    if (size < 3 || data[0] != 0xFF || data[1] != 0xD8) {
        snprintf(out->error, sizeof out->error, "not a JPEG file (no start-of-image marker)");
        return 1;
    }
    struct jpeg_decompress_struct cinfo;
    jpeg_error_handler handler;
    cinfo.err = jpeg_std_error(&handler.base);
    handler.base.error_exit = jpeg_error_exit;
    handler.base.emit_message = jpeg_quiet;
    handler.error = out->error;
    handler.error_size = sizeof out->error;
    unsigned char *volatile pixels = NULL;
    unsigned char *volatile cmyk_row = NULL;
    if (setjmp(handler.jump)) {
        free(pixels);
        free(cmyk_row);
        jpeg_destroy_decompress(&cinfo);
        return 1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    if ((double)cinfo.image_width * (double)cinfo.image_height > (double)max_pixels) {
        snprintf(out->error, sizeof out->error, "the header declares %u x %u pixels, over the limit of %ld",
                 cinfo.image_width, cinfo.image_height, max_pixels);
        jpeg_destroy_decompress(&cinfo);
        return 2;
    }
    // CMYK (and YCCK, which libjpeg turns into CMYK) is read as CMYK and converted to RGB row by row below.
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    out->progressive = jpeg_has_multiple_scans(&cinfo);
    cinfo.out_color_space = cmyk ? JCS_CMYK : cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    cinfo.dct_method = JDCT_ISLOW;  // what Pillow and libjpeg's cjpeg/djpeg use by default
    jpeg_start_decompress(&cinfo);
    int channels = cmyk ? 3 : cinfo.output_components;
    size_t stride = (size_t)cinfo.output_width * (size_t)channels;
    pixels = malloc(stride * cinfo.output_height);
    cmyk_row = cmyk ? malloc((size_t)cinfo.output_width * 4) : NULL;
    if (!pixels || (cmyk && !cmyk_row)) {
        snprintf(out->error, sizeof out->error, "out of memory");
        free(pixels);
        free(cmyk_row);
        jpeg_destroy_decompress(&cinfo);
        return 1;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        unsigned char *dst = pixels + cinfo.output_scanline * stride;
        JSAMPROW row = cmyk ? cmyk_row : dst;
        jpeg_read_scanlines(&cinfo, &row, 1);
        if (!cmyk) continue;
        // As Pillow reads them: Adobe's convention (the samples stored inverted) assumed, then its CMYK -> RGB,
        // 255 - k - c (255 - k) / 255 with its rounding, for each of c, m, y.
        const unsigned char *src = cmyk_row;
        for (JDIMENSION x = 0; x < cinfo.output_width; x++) {
            int nk = src[4 * x + 3];
            for (int ch = 0; ch < 3; ch++) {
                int t = (255 - src[4 * x + ch]) * nk + 128;
                int v = nk - (((t >> 8) + t) >> 8);
                dst[3 * x + ch] = (unsigned char)(v < 0 ? 0 : v);
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    free(cmyk_row);
    out->width = cinfo.output_width;
    out->height = cinfo.output_height;
    out->channels = channels;
    out->bit_depth = 8;
    out->pixels8 = pixels;
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

int attend_jpeg_encode(const unsigned char *pixels, long width, long height, int channels, int quality, int progressive,
                       unsigned char **out, size_t *out_size, char *error, size_t error_size) {
    if ((channels != 1 && channels != 3) || width <= 0 || height <= 0 || width > 65500 || height > 65500) {
        snprintf(error, error_size, "JPEG holds 1 or 3 channels up to 65,500 pixels a side, not %ld x %ld x %d", width, height, channels);
        return 1;
    }
    struct jpeg_compress_struct cinfo;
    jpeg_error_handler handler;
    cinfo.err = jpeg_std_error(&handler.base);
    handler.base.error_exit = jpeg_error_exit;
    handler.base.emit_message = jpeg_quiet;
    handler.error = error;
    handler.error_size = error_size;
    // jpeg_mem_dest grows this buffer with malloc; it is ours to free, on failure too.
    unsigned char *volatile mem = NULL;
    unsigned long size = 0;
    if (setjmp(handler.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(mem);
        return 1;
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, (unsigned char **)&mem, &size);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = channels;
    cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    if (progressive) jpeg_simple_progression(&cinfo);
    jpeg_start_compress(&cinfo, TRUE);
    size_t stride = (size_t)width * channels;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + cinfo.next_scanline * stride);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *out = mem;
    *out_size = size;
    return 0;
}
