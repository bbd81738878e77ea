# vcdn — everything a fresh machine needs goes through these targets.
SHELL := /bin/bash
NODE_BIN := node_modules/.bin

.PHONY: setup deps system kafka seaweedfs test-servers build run test check lint format bench clean release

## setup: system packages (ffmpeg, nginx for the benchmarks), npm packages, build
setup: system deps build

## test-servers: what the tests run against besides the tiers: the Kafka broker's jars, the SeaweedFS S3 server
test-servers: kafka seaweedfs

system:
	@bash scripts/install-system.sh

kafka:
	@bash scripts/install-kafka.sh

# The S3 server the S3 store tests run against, built once into .cache/bin (gitignored).
seaweedfs:
	@bash scripts/install-seaweedfs.sh

deps: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: deps
	$(NODE_BIN)/tsc -p tsconfig.json

## run: the whole delivery tier on this machine (origin + shield + edge on loopback)
run: setup
	node dist/cli/vcdn.js demo

## test: set up, then run every test; ends with "N passed, N failed"
test: setup test-servers
	node scripts/run-tests.mjs

check: deps
	$(NODE_BIN)/tsc --noEmit -p tsconfig.json
	$(NODE_BIN)/eslint .
	$(NODE_BIN)/prettier --check shared origin shield edge transcoder bench cli config scripts README.md
	$(NODE_BIN)/depcruise --config .dependency-cruiser.cjs shared origin shield edge transcoder bench cli

format: deps
	$(NODE_BIN)/prettier --write shared origin shield edge transcoder bench cli config scripts README.md

## release: the install package: .cache/release/vcdn-<version>-linux-x64.tar.gz and vcdn_<version>_amd64.deb
release: build
	@bash scripts/release/build.sh

bench: setup
	node dist/bench/run.js

clean:
	rm -rf dist .tap
