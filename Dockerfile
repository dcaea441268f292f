# utkface-ts in a container: the library, the CLI and the oneDNN engine's build tools.
# Build:  docker build -t utkface-ts .
# Run:    docker run --rm -v /path/to/UTKFace:/data:ro -v $PWD/results:/app/results utkface-ts \
#           kfold --model cnn-gender --fold 0 --run results/cnn-gender-kfold/protocol
# (see docs/scale.md for one container per fold on Kubernetes or Slurm).
FROM node:20-bookworm

# oneDNN, libjpeg-turbo and a compiler for the native addons (oneDNN engine, JPEG decoder); python3 for node-gyp.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libdnnl-dev libjpeg62-turbo-dev g++ make python3 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# The sources come first: `npm ci` runs the `prepare` script, which compiles lib/ to dist/.
COPY . .
RUN npm ci --no-audit --no-fund

# The report's protocol on the mounted faces; a run folder on a shared volume under results/.
ENV EXPERIMENT_PROFILE=full \
    UTKFACE_DIR=/data
ENTRYPOINT ["node_modules/.bin/tsx", "lib/cli/main.ts"]
CMD ["--help"]
