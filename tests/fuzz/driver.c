/* tests/fuzz/driver.c — runs a fuzz target over files instead of libFuzzer.
 *
 * Usage: fuzz_NAME_replay PATH...  Each PATH is a file or a directory whose
 * regular files are fed, one call each, to LLVMFuzzerTestOneInput. Used to
 * replay the checked-in corpora as ordinary ctest cases (and under the
 * sanitizer build). Prints "N passed, 0 failed"; a crash is the failure.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        fprintf(stderr, "%s: cannot open\n", path);
        return -1;
    }
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *data = malloc(size > 0 ? (size_t)size : 1);
    if (data == NULL || (size > 0 && fread(data, 1, (size_t)size, fp) != (size_t)size)) {
        fprintf(stderr, "%s: cannot read\n", path);
        free(data);
        fclose(fp);
        return -1;
    }
    fclose(fp);
    LLVMFuzzerTestOneInput(data, (size_t)size);
    free(data);
    return 0;
}

int main(int argc, char **argv)
{
    int files = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "%s: no such file or directory\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (run_file(argv[i]) != 0)
                return 1;
            files++;
            continue;
        }
        DIR *dir = opendir(argv[i]);
        struct dirent *de;
        while (dir != NULL && (de = readdir(dir)) != NULL) {
            char path[4096];
            if (de->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                if (run_file(path) != 0)
                    return 1;
                files++;
            }
        }
        if (dir != NULL)
            closedir(dir);
    }
    if (files == 0) {
        fprintf(stderr, "no corpus files given\n");
        return 1;
    }
    printf("%d passed, 0 failed\n", files);
    return 0;
}
