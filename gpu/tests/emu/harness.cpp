// Runs a list of kernel launches on host buffers (see cuda_emu.h). Built by the test
// tests/emulated_kernels.rs as: cuda_emu.h + common.cuh + *.cu + this file + the entry table.
// File format (all little-endian u64): nbufs, {len_bytes, bytes padded to 8}*, ncalls,
// {name_len, name padded to 8, gx, gy, bx, sync, nargs, {kind, value}*}* ; kind 0 = scalar,
// 1 = pointer to buffer `value`. The output file holds the buffers in the same format.
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

typedef void (*Kernel12)(u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64);
struct Entry {
    const char *name;
    void *fn;
};
extern Entry ENTRIES[];
extern int N_ENTRIES;

static u64 rd(FILE *f) {
    u64 x = 0;
    if (fread(&x, 8, 1, f) != 1) {
        fprintf(stderr, "short read\n");
        exit(2);
    }
    return x;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    FILE *in = fopen(argv[1], "rb");
    if (!in) return 2;
    std::vector<std::vector<u64>> bufs(rd(in));
    std::vector<u64> lens(bufs.size());
    for (size_t i = 0; i < bufs.size(); i++) {
        lens[i] = rd(in);
        bufs[i].resize((lens[i] + 7) / 8);
        for (auto &w : bufs[i]) w = rd(in);
    }
    u64 ncalls = rd(in);
    for (u64 c = 0; c < ncalls; c++) {
        u64 len = rd(in);
        std::vector<u64> nm((len + 7) / 8);
        for (auto &w : nm) w = rd(in);
        std::string name((const char *)nm.data(), len);
        unsigned gx = (unsigned)rd(in), gy = (unsigned)rd(in), bx = (unsigned)rd(in);
        bool sync = rd(in) != 0;
        u64 nargs = rd(in);
        u64 a[12] = {0};
        for (u64 i = 0; i < nargs; i++) {
            u64 kind = rd(in), v = rd(in);
            a[i] = kind == 1 ? (u64)(uintptr_t)bufs[v].data() : v;
        }
        Kernel12 k = nullptr;
        for (int e = 0; e < N_ENTRIES; e++)
            if (name == ENTRIES[e].name) k = (Kernel12)ENTRIES[e].fn;
        if (!k) {
            fprintf(stderr, "unknown kernel %s\n", name.c_str());
            return 3;
        }
        gridDim = {gx, gy, 1};
        blockDim = {bx, 1, 1};
        if (sync) {
            // One OS thread per CUDA thread, reused for every block; a barrier at the end of
            // each block keeps the blocks (and their shared memory) apart.
            std::barrier<> bar(bx);
            g_barrier = &bar;
            std::vector<std::thread> ts;
            for (unsigned t = 0; t < bx; t++) {
                ts.emplace_back([&, t] {
                    threadIdx = {t, 0, 0};
                    for (unsigned by = 0; by < gy; by++) {
                        for (unsigned b = 0; b < gx; b++) {
                            blockIdx = {b, by, 0};
                            k(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11]);
                            bar.arrive_and_wait();
                        }
                    }
                });
            }
            for (auto &t : ts) t.join();
        } else {
            for (unsigned by = 0; by < gy; by++) {
                for (unsigned b = 0; b < gx; b++) {
                    blockIdx = {b, by, 0};
                    for (unsigned t = 0; t < bx; t++) {
                        threadIdx = {t, 0, 0};
                        k(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11]);
                    }
                }
            }
        }
    }
    fclose(in);
    FILE *out = fopen(argv[2], "wb");
    if (!out) return 2;
    u64 nb = bufs.size();
    fwrite(&nb, 8, 1, out);
    for (size_t i = 0; i < bufs.size(); i++) {
        fwrite(&lens[i], 8, 1, out);
        fwrite(bufs[i].data(), 8, bufs[i].size(), out);
    }
    fclose(out);
    return 0;
}
