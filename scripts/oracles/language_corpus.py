"""The language corpus: file names and ambiguous contents whose language wakatime-cli decides.

Written by hand from common usage (no table copied from anywhere): ~500 extensions and file
names given an empty file, then contents that decide between the languages sharing an extension
(.h, .m, .pl, .r, .ts, .pas, .inc, .v, .fs, ...), sibling files that change the answer, and
extension-less scripts with shebangs or modelines. Each entry lives in its own folder so that
siblings are only the ones listed. `materialize` lays the corpus out the same way for the
recorder and for the tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict


class Entry(TypedDict):
    folder: str
    name: str
    content: str
    siblings: list[str]


EXTENSIONS = """
abap ada adb ads agda ahk aj al als apl applescript as asax ascx asm asmx aspx asy at au3 aug
awk axd b bal bas bash bat bb bbc bc bf bib bicep bmx boo bpl bqn bst bug bzl c c++ capnp cbl
cc cdf cf cfc cfg cfm cginc chai chpl ci cirru cjs cl clay clj cljc cljs cls cmake cmd cob coffee
conf cp cpp cpy cql cr cs cshtml csproj css csv csx cts cu cuh cxx cyp d dart dasm dcl def dfm
di diff dockerfile dpr dtd dts dtsi dyl dylan e ebnf ebuild ec ecl eclass edn eex el elm eml erb
erl es escript ex exs f f03 f08 f77 f90 f95 factor fan feature fish flx fnl for frag frt fs fsi
fsx fth fx fxh g gap gd gdshader gemspec geo gi glsl gleam go gql gradle graphql groovy gs gsp gst
gv h h++ haml handlebars hbs hc hcl hh hlsl hlsli hpp hrl hs hx hxml hxx hy i icl idr ijs ini ino
io ipf ipynb j jade java jbst jl js jsm json json5 jsonc jsonld jsp jsx kal kid kk kt kts lagda
lean less lgt lhs lidr liquid lisp ll ls lsl lua m m4 mak markdown marko mask mat mc md mdx
metal mjs mk mkd ml mli mll mly mm mo mod mojo monkey moo mos mq4 mq5 mqh ms msc mts mu mustache
mxml myt mzn n nasm nb nc ncl ni nim nimrod nit nix nl nqp nsh nsi nu odin ooc opa org orc p p6
pan pas patch php php3 php4 php5 phtml pig pike pl pl6 plot plt pm pm6 pmod po pony pot pov pp
pq prg pro prolog promql properties proto ps ps1 psd1 psm1 pug purs pwn pxd pxi py pyi pyw pyx
qbs qml r r3 raku rakumod razor rb rbw rbx re reb red reg rei res resi rest rex rexx rhtml rkt
rktd rktl rl rnc robot rq rs rsl rst rvt s sage sarl sas sass sc scad scala scd sce sci scm scss
sed sh shader sieve sig siv sls smali sml smv snobol sol sp sparql spec sql sqlite ss st styl sv
svelte svg svh swift t tac tal tap tasm tcl tcsh td tex textile tf tfvars thrift thy timer tmpl
toml tpl tpp tres tscn tsx tst ttl tu turing twig txt typ udo v vala vapi vb vbs vcl vert vhd
vhdl vim vm vue vv wdte webmanifest wgsl wl wlua wsdl x xaml xhtml xi xm xmi xml xpl xq xql
xquery xsd xsl xslt xtend xul yaml yang yml zeek zig zsh
astro bicepparam cjsx cshrc d.ts erl-sh hxsl ipp jinja jinja2 j2 ksh l mdown mkdn mkii
ocamllex purescript rake ru slim tmux tsv unity zep zone
"""

# Extensions in upper case, which some lexers match differently from the lower-case ones.
CASED = "C H CPP R S F F90 SAS BAS PRG ASM COB CBL ICON FEATURE".split()  # noqa: SIM905

FILENAMES = """
.bash_profile .bashrc .editorconfig .emacs .env .gitconfig .htaccess .pylintrc .Renviron
.Rhistory .Rprofile .vimrc .zshrc .justfile .gitignore .babelrc .clang-format .npmrc
APKBUILD BSDmakefile BUCK BUILD BUILD.bazel Berksfile CMakeLists.txt Caddyfile Dockerfile
Dockerfile.dev GNUmakefile Gemfile Jenkinsfile Justfile Kconfig Makefile Makefile.am Pipfile
PKGBUILD Podfile Rakefile SConscript SConstruct Vagrantfile WORKSPACE autohandler bashrc
control crontab dhandler dhcpd.conf go.mod go.sum justfile makefile meson.build
meson_options.txt nginx.conf pacman.conf poetry.lock pylintrc squid.conf termcap terminfo
v.mod zshrc Cargo.lock Cargo.toml package.json tsconfig.json README LICENSE
view.blade.php config.cmake.in page.go.tmpl show.html.erb show.json.jbuilder build.rs.in
feed.xml.erb kernel.hc.z index.d.ts
"""

# (name, content, siblings): contents and neighbours that decide between languages.
AMBIGUOUS: list[tuple[str, str, tuple[str, ...]]] = [
    ("lone.h", "int add(int a, int b);\n", ()),
    ("point.h", "#include <stdio.h>\nstruct point { int x, y; };\n", ()),
    ("vec.h", "#include <vector>\nnamespace geo {\nclass Vec {\npublic:\n  int x;\n};\n}\n", ()),
    ("tpl.h", "template <typename T>\nT twice(T v) { return v + v; }\n", ()),
    ("View.h", "#import <Foundation/Foundation.h>\n@interface View : NSObject\n@end\n", ()),
    ("util.h", "int util(void);\n", ("util.c",)),
    ("shape.h", "int area(void);\n", ("shape.cpp",)),
    ("shape2.h", "int area(void);\n", ("other.cpp",)),
    ("Model.h", "int model(void);\n", ("Model.m",)),
    ("Mixed.h", "int mixed(void);\n", ("Mixed.mm",)),
    ("only.h", "int only(void);\n", ("main.c",)),
    ("conf.h", "#define N 10\n", ("x.hpp",)),
    ("main.c", "int main(void) { return 0; }\n", ("main.h",)),
    ("App.m", '#import "App.h"\n@implementation App\n- (void)run {}\n@end\n', ()),
    ("plot.m", "function y = plot_it(x)\n  y = x .^ 2;\n  disp(y);\nend\n", ()),
    ("calc.m", "% compute things\nx = linspace(0, 1, 10);\ny = sin(x);\n", ()),
    ("calc2.m", "x = 1;\n", ("data.mat",)),
    ("Ctl.m", "x = 1;\n", ("Ctl.h",)),
    ("empty.m", "", ()),
    ("nb.m", "(* Mathematica *)\nf[x_] := x^2\nPlot[f[x], {x, 0, 1}]\n", ()),
    ("run.pl", '#!/usr/bin/perl\nuse strict;\nuse warnings;\nprint "hi\\n";\n', ()),
    ("mod.pl", "use strict;\nmy $x = 1;\nsub f { return $x; }\n", ()),
    ("facts.pl", "parent(tom, bob).\nancestor(X, Y) :- parent(X, Y).\n", ()),
    ("rules.pl", ":- module(rules, [go/0]).\ngo :- write(hello), nl.\n", ()),
    ("stats.r", "x <- c(1, 2, 3)\nprint(mean(x))\nlibrary(ggplot2)\n", ()),
    ("stats.R", "df <- data.frame(a = 1:3)\nsummary(df)\n", ()),
    ("script.r", 'REBOL [Title: "hello"]\nprint "hello"\n', ()),
    ("app.ts", "export function f(x: number): number {\n  return x * 2;\n}\n", ()),
    (
        "qt_de.ts",
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE TS>\n<TS version="2.1">\n</TS>\n',
        (),
    ),
    ("setup.ts", "page = PAGE\npage.10 = TEXT\npage.10.value = Hello\n", ()),
    ("view.tsx", "export const V = () => <div>hi</div>;\n", ()),
    ("types.tsx", "interface P { a: number }\nexport type Q = P;\n", ()),
    ("unit.pas", "unit Foo;\ninterface\nimplementation\nend.\n", ()),
    ("prog.pas", "program Hello;\nbegin\n  writeln('Hello');\nend.\n", ()),
    ("lib.inc", "<?php\nfunction f() { return 1; }\n", ()),
    ("defs.inc", "procedure Foo;\nbegin\nend;\n", ()),
    ("scene.inc", "#declare Red = rgb <1, 0, 0>;\n", ()),
    ("pkg-1.0.ebuild", 'EAPI=8\nDESCRIPTION="x"\nsrc_compile() {\n  emake\n}\n', ()),
    ("top.v", "module top(input clk);\nalways @(posedge clk) begin\nend\nendmodule\n", ()),
    ("Proof.v", "Theorem t : True.\nProof.\n  trivial.\nQed.\n", ()),
    ("main.v", "fn main() {\n  println('hi')\n}\n", ()),
    ("Lib.fs", "module Lib\nlet square x = x * x\n", ()),
    ("words.fs", ": square ( n -- n*n ) dup * ;\n", ()),
    ("shader.fs", "#version 330\nvoid main() { gl_FragColor = vec4(1.0); }\n", ()),
    ("Doc.cls", "\\NeedsTeXFormat{LaTeX2e}\n\\ProvidesClass{doc}\n", ()),
    ("Acc.cls", "public class Acc {\n  public static void run() {}\n}\n", ()),
    ("gram.y", "%token NUM\n%%\nexpr: NUM ;\n%%\n", ()),
    ("lex.l", "%%\n[0-9]+  { return NUM; }\n%%\n", ()),
    ("site.pp", "class nginx {\n  package { 'nginx': ensure => installed }\n}\n", ()),
    ("unit.pp", "unit Foo;\ninterface\nimplementation\nend.\n", ()),
    ("deps.d", "main.o: main.c main.h\n", ()),
    ("app.d", 'import std.stdio;\nvoid main() { writeln("hi"); }\n', ()),
    ("test.t", "use Test::More;\nok(1);\ndone_testing;\n", ()),
    ("kern.cl", "__kernel void add(__global float* a) { a[0] = 1; }\n", ()),
    ("lisp.cl", "(defun square (x) (* x x))\n", ()),
    ("boot.s", ".globl _start\n_start:\n  mov $1, %eax\n", ()),
    ("boot.asm", "section .text\nglobal _start\n_start:\n  mov eax, 1\n", ()),
    ("readme.md", "# Title\n\nSome *text*.\n", ()),
    ("mod.mod", "MODULE Hello;\nBEGIN\nEND Hello.\n", ()),
    ("go2.mod", "module example.com/x\n\ngo 1.22\n", ()),
    ("prog.bas", '10 PRINT "HELLO"\n20 GOTO 10\n', ()),
    ("q.sql", "SELECT * FROM t WHERE id = 1;\n", ()),
    ("proc.sql", "CREATE OR REPLACE PROCEDURE p IS\nBEGIN\n  NULL;\nEND;\n/\n", ()),
    ("my.sql", "CREATE TABLE `t` (`id` int AUTO_INCREMENT) ENGINE=InnoDB;\n", ()),
    ("conf.cfg", "[section]\nkey = value\n", ()),
    ("app.ml", 'let () = print_endline "hi"\n', ()),
    ("data.json", '{"a": 1}\n', ()),
    ("index.html", "<!DOCTYPE html>\n<html><body><?php echo 1; ?></body></html>\n", ()),
    ("page.php", "<html>\n<?php echo 'x'; ?>\n</html>\n", ()),
    ("x.pro", "QT += core\nSOURCES += main.cpp\n", ()),
    ("y.pro", "foo(X) :- bar(X).\n", ()),
    ("model.sc", "SinOsc.ar(440, 0, 0.2).play;\n", ()),
    ("prog.prg", 'FUNCTION Main()\n  ? "Hello"\nRETURN NIL\n', ()),
    ("ex.ex", "defmodule Ex do\n  def f, do: 1\nend\n", ()),
    ("page.rs", 'fn main() {\n    println!("hi");\n}\n', ()),
    ("q.rq", "SELECT ?s WHERE { ?s ?p ?o }\n", ()),
    ("gen.sh", "#!/bin/sh\necho hi\n", ()),
    ("build.gradle.kts", 'plugins { kotlin("jvm") }\n', ()),
    # wakatime-cli's C-family rule also catches any .c* or .h* extension next to C/C++ files
    ("style.css", "body { margin: 0; }\n", ("main.cpp",)),
    ("layout.html", "<p>hi</p>\n", ("main.c",)),
]

# Files with no extension a language could come from: shebangs, modelines, markup.
SCRIPTS: list[tuple[str, str]] = [
    ("run-python", "#!/usr/bin/env python3\nprint('hi')\n"),
    ("run-python2", "#!/usr/bin/python2.7\nprint 'hi'\n"),
    ("run-bash", "#!/bin/bash\necho hi\n"),
    ("run-sh", "#!/bin/sh\nset -e\necho hi\n"),
    ("run-zsh", "#!/usr/bin/env zsh\necho hi\n"),
    ("run-node", "#!/usr/bin/env node\nconsole.log('hi');\n"),
    ("run-ruby", "#!/usr/bin/env ruby\nputs 'hi'\n"),
    ("run-perl", '#!/usr/bin/perl -w\nprint "hi\\n";\n'),
    ("run-php", "#!/usr/bin/env php\n<?php echo 'hi';\n"),
    ("run-lua", "#!/usr/bin/env lua\nprint('hi')\n"),
    ("run-tcl", "#!/usr/bin/tclsh\nputs hi\n"),
    ("run-awk", "#!/usr/bin/awk -f\n{ print $1 }\n"),
    ("run-envs", "#!/usr/bin/env -S python3 -u\nprint('hi')\n"),
    ("run-fish", "#!/usr/bin/env fish\necho hi\n"),
    ("run-deno", "#!/usr/bin/env -S deno run\nconsole.log(1)\n"),
    ("modeline-vim", "# vim: set ft=python :\nx = 1\n"),
    ("modeline-emacs", "# -*- mode: ruby -*-\nputs 1\n"),
    ("xml-doc", '<?xml version="1.0"?>\n<root><a/></root>\n'),
    ("html-doc", "<!DOCTYPE html>\n<html><head></head><body></body></html>\n"),
    ("plain", "just some words\n"),
]


def entries() -> list[Entry]:
    """The whole corpus, in a fixed order."""
    names: list[tuple[str, str, tuple[str, ...]]] = []
    names += [(f"file.{ext}", "", ()) for ext in EXTENSIONS.split()]
    names += [(f"File.{ext}", "", ()) for ext in CASED]
    names += [(name, "", ()) for name in FILENAMES.split()]
    names += AMBIGUOUS
    names += [(name, content, ()) for name, content in SCRIPTS]
    return [
        Entry(folder=f"{index:04d}", name=name, content=content, siblings=list(siblings))
        for index, (name, content, siblings) in enumerate(names)
    ]


def materialize(corpus: list[Entry], root: Path) -> list[Path]:
    """Write each entry into its own folder under root; the paths of the entries' files."""
    paths = []
    for entry in corpus:
        folder = root / entry["folder"]
        folder.mkdir(parents=True, exist_ok=True)
        for sibling in entry["siblings"]:
            (folder / sibling).write_text("")
        path = folder / entry["name"]
        path.write_text(entry["content"])
        paths.append(path)
    return paths
