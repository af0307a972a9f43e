/* Replays fuzz inputs through the harness without libFuzzer: `fuzz_replay PATH...`, where each
 * PATH is an input file or a directory of them (read in name order). The ctest entry replays the
 * committed corpus, so a regression on any seed or on a past crash fails `make test`. Exits 0
 * when every input ran (a violated invariant aborts), 1 when no input was found or one could not
 * be read. */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_harness.h"

#define MAX_INPUT_BYTES (1u << 20)

static int replay_file(const char* path)
{
    FILE* file = fopen(path, "rb");
    if (file == NULL)
    {
        (void)fprintf(stderr, "fuzz_replay: cannot open %s\n", path);
        return -1;
    }
    static uint8_t data[MAX_INPUT_BYTES];
    size_t size = fread(data, 1, sizeof(data), file);
    bool failed = ferror(file) != 0;
    (void)fclose(file);
    if (failed)
    {
        (void)fprintf(stderr, "fuzz_replay: cannot read %s\n", path);
        return -1;
    }
    /* named first, so that the input an invariant aborts on is the last one listed */
    (void)fprintf(stderr, "fuzz_replay: %s\n", path);
    (void)LLVMFuzzerTestOneInput(data, size);
    return 0;
}

static int by_name(const struct dirent** a, const struct dirent** b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Returns the inputs replayed, or -1. */
static int replay_directory(const char* path)
{
    struct dirent** entries;
    int count = scandir(path, &entries, NULL, by_name);
    if (count < 0)
    {
        (void)fprintf(stderr, "fuzz_replay: cannot list %s\n", path);
        return -1;
    }
    int replayed = 0;
    for (int i = 0; i < count; i++)
    {
        char file[4096];
        struct stat info;
        (void)snprintf(file, sizeof(file), "%s/%s", path, entries[i]->d_name);
        if (entries[i]->d_name[0] != '.' && stat(file, &info) == 0 && S_ISREG(info.st_mode))
        {
            replayed = (replayed < 0 || replay_file(file) != 0) ? -1 : replayed + 1;
        }
        free(entries[i]);
    }
    free(entries);
    return replayed;
}

int main(int argc, char** argv)
{
    int total = 0;
    LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc && total >= 0; i++)
    {
        struct stat info;
        int replayed = (stat(argv[i], &info) == 0 && S_ISDIR(info.st_mode)) ? replay_directory(argv[i]) :
            (replay_file(argv[i]) == 0) ? 1 : -1;
        total = (replayed < 0) ? -1 : total + replayed;
    }
    fuzz_harness_deinit();
    if (total <= 0)
    {
        (void)fprintf(stderr, "fuzz_replay: %s\n", (total == 0) ? "no input found" : "an input could not be replayed");
        return 1;
    }
    (void)printf("fuzz_replay: %d inputs replayed, every invariant held\n", total);
    return 0;
}
