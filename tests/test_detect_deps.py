"""Dependencies per language, in wakatime-cli's shapes, parsed from real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.pipeline.detect import Detector
from agent.pipeline.detect.deps import MAX_DEPENDENCIES, MAX_DEPENDENCY_LENGTH, parse_dependencies

CASES = [
    (
        "app.py",
        """# -*- coding: utf-8 -*-
from __future__ import annotations

import os, sys
import first, second as two
import django.forms.widgets
from flask import session, render_template
import simplejson as json
from . import sibling
from ..pkg import thing
from sqlalchemy import (
    orm,
)

try:
    from mock import ANY
except ImportError:
    from unittest.mock import ANY
""",
        ("first", "second", "django", "flask", "simplejson", "sqlalchemy", "mock", "unittest"),
    ),
    (
        "view.js",
        """import Alpha from './bravo';
import { charlie } from '../../echo/foxtrot';
import juliett from 'kilo';
import {
  lima,
} from 'react-dom/client';
import * as papa from "quebec";
import 'uniform.js';
const fs = require('fs');
const lodash = require("lodash/fp");
const lazy = await import('./lazy.mjs');
export { x } from 'reexported';
""",
        ("bravo", "foxtrot", "kilo", "client", "quebec", "uniform", "fs", "fp", "lazy",
         "reexported"),
    ),
    (
        "Layout.tsx",
        """import Head from 'next/head';
import { type ReactNode } from 'react';
import Footer from './Footer';
""",
        ("head", "react", "Footer"),
    ),
    (
        "main.go",
        """package main

import "fmt"
import "compress/gzip"
import "github.com/golang/example/stringutil"
import (
\t"log"
\tnewname "oldname"
\t_ "image/gif"
\t. "math"
)
""",
        ("compress/gzip", "github.com/golang/example/stringutil", "log", "oldname", "image/gif",
         "math"),
    ),
    (
        "lib.rs",
        """extern crate proc_macro;
extern crate phrases as sayings;
#[macro_use]
extern crate quote;
use std::collections::HashMap;
use serde::{Deserialize, Serialize};
pub use tokio::sync;
use crate::local::thing;
use self::inner;
use super::parent;
use ::anyhow::Result;
""",
        ("proc_macro", "phrases", "quote", "serde", "tokio", "anyhow"),
    ),
    (
        "Hello.java",
        """package com.example.hello;
import java.io.*;
import javax.servlet.*;
import static com.googlecode.javacv.jna.highgui.cvReleaseCapture;
import com.colorfulwolf.webcamapplet.gui.ImagePanel;
import com.foobar.*;
import org.springframework.boot.SpringApplication;
import lombok.Data;
""",
        ("googlecode.javacv", "colorfulwolf.webcamapplet", "foobar", "springframework.boot",
         "lombok.Data"),
    ),
    (
        "Main.kt",
        """package com.wakatime
import java.io.*
import alpha.time.Some
import bravo.charlie.something.Other
import delta.io.*
import echo.Foxtrot as Golf
import h
""",
        ("alpha.time", "bravo.charlie", "delta.io", "echo.Foxtrot", "h"),
    ),
    (
        "prog.c",
        """#include <stdio.h>
#include <math.h>
#include <openssl/rand.h>
#include "local/config.h"
""",
        ("math", "openssl", "local"),
    ),
    (
        "prog.cpp",
        """#include <iostream>
#include <openssl/rand.h>
#include "wakatime.h"
#include <boost/asio.hpp>
""",
        ("openssl", "wakatime", "boost"),
    ),
    (
        "View.m",
        """#import "SomeViewController.h"
#import <UIKit/UIKit.h>
@import PromiseKit;
@implementation View
@end
""",
        ("SomeViewController", "UIKit", "PromiseKit"),
    ),
    (
        "Program.cs",
        """using System;
using System.IO;
using Microsoft.Win32;
using WakaTime.Forms;
using static Math.Foo;
using Task = Fart.Threading.Tasks.Task;
global using Newtonsoft.Json;
class P { void M() { using (var s = Open()) { } } }
""",
        ("WakaTime", "Math", "Fart", "Newtonsoft"),
    ),
    (
        "index.php",
        """<?php
namespace ThisIsMy\\FakeNamespace;
use Interop\\Container\\ContainerInterface;
require 'ServiceLocator.php';
require_once("vendor/autoload.php");
use FooBarOne\\Classname as Another;
use function FooBarThree\\Full\\functionName;
use const FooBarSix\\Full\\CONSTANT;
use \\ArrayObject;
use App\\Models\\User;
""",
        ("Interop", "ServiceLocator.php", "vendor/autoload.php", "FooBarOne", "FooBarThree",
         "FooBarSix", "ArrayObject"),
    ),
    (
        "app.rb",
        """require 'json'
require "active_support/core_ext"
require_relative 'helper'
gem 'rails', '~> 7.0'
""",
        ("json", "active_support", "rails"),
    ),
    (
        "App.swift",
        """import Foundation
import UIKit
@testable import PromiseKit
import struct Charts.BarChart
""",
        ("UIKit", "PromiseKit", "Charts"),
    ),
    (
        "App.vue",
        """<template><div/></template>
<script setup>
import { ref } from 'vue'
import Child from './Child.vue'
</script>
""",
        ("vue", "Child"),
    ),
]  # fmt: skip


@pytest.mark.parametrize(("name", "source", "expected"), CASES, ids=[c[0] for c in CASES])
def test_dependencies(tmp_path: Path, name: str, source: str, expected: tuple[str, ...]) -> None:
    (tmp_path / name).write_text(source)
    assert Detector().detect(str(tmp_path / name)).dependencies == expected


def test_package_json_names_npm_and_its_packages(tmp_path: Path) -> None:
    manifest = {
        "name": "site",
        "dependencies": {"react": "^18", "next": "14"},
        "devDependencies": {"eslint": "9"},
        "scripts": {"build": "next build"},
    }
    (tmp_path / "package.json").write_text(json.dumps(manifest))
    d = Detector().detect(str(tmp_path / "package.json"))
    assert (d.language, d.dependencies) == ("JSON", ("npm", "react", "next", "eslint"))
    (tmp_path / "bower.json").write_text("{not json")
    assert Detector().detect(str(tmp_path / "bower.json")).dependencies == ("bower",)


def test_languages_without_a_parser_and_binary_files(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("import os\n")
    (tmp_path / "blob.py").write_bytes(b"import os2\n\x00\x00")
    detector = Detector()
    assert detector.detect(str(tmp_path / "notes.md")).dependencies == ()
    assert detector.detect(str(tmp_path / "blob.py")).dependencies == ()


def test_only_the_head_of_a_large_file_is_parsed(tmp_path: Path) -> None:
    body = "import early\n" + "x = 1\n" * 20000 + "import late\n"
    (tmp_path / "big.py").write_text(body)
    assert Detector().detect(str(tmp_path / "big.py")).dependencies == ("early",)


def test_dependencies_are_unique_bounded_and_limited_in_count() -> None:
    long_name = "a" * (MAX_DEPENDENCY_LENGTH + 1)
    source = f"import dup\nimport dup\nimport {long_name}\n" + "".join(
        f"import m{i}\n" for i in range(MAX_DEPENDENCIES + 50)
    )
    deps = parse_dependencies("Python", "x.py", source)
    assert deps[0] == "dup" and long_name not in deps
    assert len(deps) == MAX_DEPENDENCIES == len(set(deps))
